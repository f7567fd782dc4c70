namespace Halo.Core.Configuration;

/// <summary>What kind of value a key holds, for parsing and for error messages.</summary>
public enum ConfigValueKind
{
    String,
    Integer,
    Number,
    List,
}

/// <summary>One configuration key: its YAML path (<c>section.key</c>), its environment variable and its meaning.</summary>
public sealed record ConfigKey(string Path, ConfigValueKind Kind, string Description)
{
    /// <summary><c>server.max_body_bytes</c> is <c>HALO_SERVER_MAX_BODY_BYTES</c>; lists are comma-separated there.</summary>
    public string EnvironmentVariable { get; } = "HALO_" + Path.Replace('.', '_').ToUpperInvariant();
}

/// <summary>Every configuration key, declared once. <c>config/halo.yaml</c> documents each with its default.</summary>
public static class ConfigKeys
{
    public static IReadOnlyList<ConfigKey> All { get; } =
    [
        new("server.listen", ConfigValueKind.List, "addresses to listen on: host:port, [ipv6]:port, unix:/path"),
        new("server.max_body_bytes", ConfigValueKind.Integer, "largest request body; larger gets 413"),
        new("server.drain_timeout_seconds", ConfigValueKind.Number, "on SIGTERM, time given to in-flight generations"),
        new("server.retry_after_seconds", ConfigValueKind.Integer, "Retry-After sent with 429 when the queue is full"),
        new("model.path", ConfigValueKind.String, "model file or directory, or a name under model.models_dir"),
        new("model.name", ConfigValueKind.String, "model id shown by /v1/models; empty: the file name"),
        new("model.models_dir", ConfigValueKind.String, "where installed models live"),
        new("model.backend", ConfigValueKind.String, "auto, cpu or gpu"),
        new("model.threads", ConfigValueKind.Integer, "CPU backend threads; 0 = all cores"),
        new("model.context_length", ConfigValueKind.Integer, "positions per sequence; 0 = the model's own"),
        new("model.activation", ConfigValueKind.String, "feed-forward activation override: silu or relu2; empty = the model's"),
        new("model.lm_head", ConfigValueKind.String, "CPU backend LM head storage: source (exact), int8, int6 or int4; empty = int6"),
        new("model.repack_cache", ConfigValueKind.String, "directory keeping repacked weights between starts, or off; empty = the service's cache/state directory or ~/.cache/halo/repack"),
        new("scheduler.slots", ConfigValueKind.Integer, "sequences generated at once"),
        new("scheduler.queue_size", ConfigValueKind.Integer, "requests waiting for a slot; beyond that 429"),
        new("scheduler.prefill_chunk_tokens", ConfigValueKind.Integer, "prompt tokens per sequence per step"),
        new("scheduler.default_max_tokens", ConfigValueKind.Integer, "completion length when a request names none; 0 = until the context is full"),
        new("auth.api_keys", ConfigValueKind.List, "SHA-256 hex hashes of accepted API keys"),
        new("auth.api_key_file", ConfigValueKind.String, "file with one key hash per line"),
        new("auth.public_paths", ConfigValueKind.List, "paths served without a key"),
        new("logging.level", ConfigValueKind.String, "trace, debug, information, warning, error, critical"),
        new("logging.format", ConfigValueKind.String, "auto, console or journald"),
        new("metrics.sysfs_root", ConfigValueKind.String, "sysfs root read for amdgpu gauges"),
        new("doctor.forbidden_runtimes", ConfigValueKind.List, "interpreters no serving unit may run (halo doctor)"),
        new("doctor.allowed", ConfigValueKind.List, "absolute paths of allowlisted binaries (halo doctor)"),
        new("doctor.interpreter_rss_mb", ConfigValueKind.Integer, "interpreter processes above this RSS are reported (halo doctor)"),
    ];

    public static ConfigKey? Find(string path)
    {
        foreach (ConfigKey key in All)
        {
            if (key.Path == path)
            {
                return key;
            }
        }

        return null;
    }
}
