using System.Text.Json.Nodes;
using Halo.Core.Configuration;

namespace Halo.Server.Mcp;

/// <summary>The configuration in force as JSON, keyed as in <c>halo.yaml</c>, with the API key hashes replaced by
/// their count: a hash is not the key, but it is still not for agents to read.</summary>
internal static class ConfigJson
{
    public const string Redacted = "(redacted)";

    public static JsonObject From(HaloOptions options) => new()
    {
        ["server"] = new JsonObject
        {
            ["listen"] = Strings(options.Server.Listen.Select(a => a.Text)),
            ["max_body_bytes"] = options.Server.MaxBodyBytes,
            ["drain_timeout_seconds"] = options.Server.DrainTimeoutSeconds,
            ["retry_after_seconds"] = options.Server.RetryAfterSeconds,
        },
        ["model"] = new JsonObject
        {
            ["path"] = options.Model.Path,
            ["name"] = options.Model.Name,
            ["models_dir"] = options.Model.ModelsDir,
            ["backend"] = options.Model.Backend,
            ["threads"] = options.Model.Threads,
            ["context_length"] = options.Model.ContextLength,
            ["activation"] = options.Model.Activation,
        },
        ["scheduler"] = new JsonObject
        {
            ["slots"] = options.Scheduler.Slots,
            ["queue_size"] = options.Scheduler.QueueSize,
            ["prefill_chunk_tokens"] = options.Scheduler.PrefillChunkTokens,
            ["default_max_tokens"] = options.Scheduler.DefaultMaxTokens,
        },
        ["auth"] = new JsonObject
        {
            ["api_keys"] = options.Auth.ApiKeys.Count == 0 ? new JsonArray() : Strings(options.Auth.ApiKeys.Select(_ => Redacted)),
            ["api_key_file"] = options.Auth.ApiKeyFile,
            ["public_paths"] = Strings(options.Auth.PublicPaths),
        },
        ["logging"] = new JsonObject
        {
            ["level"] = options.Logging.Level,
            ["format"] = options.Logging.Format,
        },
        ["metrics"] = new JsonObject
        {
            ["sysfs_root"] = options.Metrics.SysfsRoot,
        },
        ["doctor"] = new JsonObject
        {
            ["forbidden_runtimes"] = Strings(options.Doctor.ForbiddenRuntimes),
            ["allowed"] = Strings(options.Doctor.Allowed),
            ["interpreter_rss_mb"] = options.Doctor.InterpreterRssMb,
        },
    };

    private static JsonArray Strings(IEnumerable<string> values)
    {
        var array = new JsonArray();
        foreach (string value in values)
        {
            array.Add(value);
        }

        return array;
    }
}
