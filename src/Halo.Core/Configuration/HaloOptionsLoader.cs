using System.Collections;
using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Halo.Core.Configuration;

/// <summary>
/// Builds <see cref="HaloOptions"/> from the YAML file, then <c>HALO_*</c> environment variables, then flags
/// (later sources win), and validates the result. Every problem is collected, so one start shows the operator
/// the whole list; <see cref="ConfigErrorsException"/> carries it.
/// </summary>
public static class HaloOptionsLoader
{
    /// <summary>
    /// Loads the configuration. <paramref name="configPath"/> null means the default path, which may be absent;
    /// an explicit path must exist. <paramref name="flags"/> maps key paths (<c>model.path</c>) to values, with
    /// the flag's name for messages.
    /// </summary>
    public static HaloOptions Load(
        string? configPath,
        IDictionary environment,
        IReadOnlyList<(string Path, string Value, string Flag)> flags)
    {
        var errors = new List<string>();
        var settings = new Dictionary<string, RawSetting>(StringComparer.Ordinal);

        string path = configPath ?? HaloOptions.DefaultConfigPath;
        if (File.Exists(path))
        {
            ReadYaml(path, File.ReadAllText(path), settings, errors);
        }
        else if (configPath is not null)
        {
            errors.Add($"{path}: config file not found");
        }

        ReadEnvironment(environment, settings);
        foreach ((string keyPath, string value, string flag) in flags)
        {
            ConfigKey key = ConfigKeys.Find(keyPath) ?? throw new ArgumentException($"undeclared key {keyPath}", nameof(flags));
            settings[keyPath] = key.Kind == ConfigValueKind.List
                ? new RawSetting(null, SplitList(value), flag)
                : new RawSetting(value, null, flag);
        }

        HaloOptions options = Build(new SettingReader(settings, errors));
        Validate(options, errors);
        if (errors.Count > 0)
        {
            throw new ConfigErrorsException(errors);
        }

        return options;
    }

    /// <summary>Parses YAML text alone (no environment, no flags); for tests and <c>config/halo.yaml</c> checks.</summary>
    public static HaloOptions Parse(string yaml, string sourceName = "halo.yaml")
    {
        var errors = new List<string>();
        var settings = new Dictionary<string, RawSetting>(StringComparer.Ordinal);
        ReadYaml(sourceName, yaml, settings, errors);
        HaloOptions options = Build(new SettingReader(settings, errors));
        Validate(options, errors);
        return errors.Count > 0 ? throw new ConfigErrorsException(errors) : options;
    }

    /// <summary>A value as a source gave it: a scalar or a list, and where it came from (for messages).</summary>
    private sealed record RawSetting(string? Scalar, IReadOnlyList<string>? Items, string Source);

    private static void ReadYaml(string file, string text, Dictionary<string, RawSetting> settings, List<string> errors)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            errors.Add($"{file}:{e.Start.Line}:{e.Start.Column}: not valid YAML: {e.InnerException?.Message ?? e.Message}");
            return;
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's parser gives up this way on some truncated documents (an unclosed flow mapping).
            errors.Add($"{file}: not valid YAML: the document ends inside an unclosed [ or {{");
            return;
        }

        if (stream.Documents.Count == 0)
        {
            return;
        }

        YamlNode root = stream.Documents[0].RootNode;
        if (IsNull(root))
        {
            return;
        }

        if (root is not YamlMappingNode sections)
        {
            errors.Add($"{Where(file, root)}: expected a mapping of sections (server:, model:, ...)");
            return;
        }

        foreach ((YamlNode sectionKey, YamlNode sectionValue) in sections.Children)
        {
            string section = ((sectionKey as YamlScalarNode)?.Value) ?? "";
            if (!IsSection(section))
            {
                errors.Add($"{Where(file, sectionKey)}: unknown section '{section}'");
                continue;
            }

            if (IsNull(sectionValue))
            {
                continue;
            }

            if (sectionValue is not YamlMappingNode keys)
            {
                errors.Add($"{Where(file, sectionValue)}: {section}: expected a mapping of keys");
                continue;
            }

            foreach ((YamlNode keyNode, YamlNode valueNode) in keys.Children)
            {
                string keyPath = section + "." + ((keyNode as YamlScalarNode)?.Value ?? "");
                ConfigKey? key = ConfigKeys.Find(keyPath);
                if (key is null)
                {
                    errors.Add($"{Where(file, keyNode)}: unknown key '{keyPath}'");
                    continue;
                }

                string source = Where(file, valueNode);
                if (key.Kind == ConfigValueKind.List)
                {
                    if (IsNull(valueNode))
                    {
                        settings[keyPath] = new RawSetting(null, [], source);
                    }
                    else if (valueNode is YamlSequenceNode sequence && AllScalars(sequence, out List<string> items))
                    {
                        settings[keyPath] = new RawSetting(null, items, source);
                    }
                    else if (valueNode is YamlScalarNode single)
                    {
                        settings[keyPath] = new RawSetting(null, [single.Value ?? ""], source);
                    }
                    else
                    {
                        errors.Add($"{source}: {keyPath}: expected a list of strings");
                    }
                }
                else if (valueNode is YamlScalarNode scalar)
                {
                    settings[keyPath] = new RawSetting(IsNull(scalar) ? "" : scalar.Value ?? "", null, source);
                }
                else
                {
                    errors.Add($"{source}: {keyPath}: expected a single value, not a {(valueNode is YamlSequenceNode ? "list" : "mapping")}");
                }
            }
        }
    }

    private static void ReadEnvironment(IDictionary environment, Dictionary<string, RawSetting> settings)
    {
        foreach (ConfigKey key in ConfigKeys.All)
        {
            if (environment[key.EnvironmentVariable] is string value)
            {
                settings[key.Path] = key.Kind == ConfigValueKind.List
                    ? new RawSetting(null, SplitList(value), key.EnvironmentVariable)
                    : new RawSetting(value, null, key.EnvironmentVariable);
            }
        }
    }

    private static HaloOptions Build(SettingReader r)
    {
        var d = new HaloOptions();
        return new HaloOptions
        {
            Server = new ServerOptions
            {
                Listen = r.Addresses("server.listen", d.Server.Listen),
                MaxBodyBytes = r.Integer("server.max_body_bytes", d.Server.MaxBodyBytes, long.MaxValue),
                DrainTimeoutSeconds = r.Number("server.drain_timeout_seconds", d.Server.DrainTimeoutSeconds),
                RetryAfterSeconds = (int)r.Integer("server.retry_after_seconds", d.Server.RetryAfterSeconds),
            },
            Model = new ModelOptions
            {
                Path = r.String("model.path", d.Model.Path),
                Name = r.String("model.name", d.Model.Name),
                ModelsDir = r.String("model.models_dir", d.Model.ModelsDir),
                Backend = r.String("model.backend", d.Model.Backend),
                Threads = (int)r.Integer("model.threads", d.Model.Threads),
                ContextLength = (int)r.Integer("model.context_length", d.Model.ContextLength),
                Activation = r.String("model.activation", d.Model.Activation),
                LmHead = r.String("model.lm_head", d.Model.LmHead),
                RepackCache = r.String("model.repack_cache", d.Model.RepackCache),
            },
            Scheduler = new SchedulerOptions
            {
                Slots = (int)r.Integer("scheduler.slots", d.Scheduler.Slots),
                QueueSize = (int)r.Integer("scheduler.queue_size", d.Scheduler.QueueSize),
                PrefillChunkTokens = (int)r.Integer("scheduler.prefill_chunk_tokens", d.Scheduler.PrefillChunkTokens),
                DefaultMaxTokens = (int)r.Integer("scheduler.default_max_tokens", d.Scheduler.DefaultMaxTokens),
            },
            Auth = new AuthOptions
            {
                ApiKeys = r.List("auth.api_keys", d.Auth.ApiKeys),
                ApiKeyFile = r.String("auth.api_key_file", d.Auth.ApiKeyFile),
                PublicPaths = r.List("auth.public_paths", d.Auth.PublicPaths),
            },
            Logging = new LoggingOptions
            {
                Level = r.String("logging.level", d.Logging.Level),
                Format = r.String("logging.format", d.Logging.Format),
            },
            Metrics = new MetricsOptions
            {
                SysfsRoot = r.String("metrics.sysfs_root", d.Metrics.SysfsRoot),
            },
            Doctor = new DoctorOptions
            {
                ForbiddenRuntimes = r.List("doctor.forbidden_runtimes", d.Doctor.ForbiddenRuntimes),
                Allowed = r.List("doctor.allowed", d.Doctor.Allowed),
                InterpreterRssMb = (int)r.Integer("doctor.interpreter_rss_mb", d.Doctor.InterpreterRssMb),
            },
        };
    }

    private static readonly string[] Backends = ["auto", "cpu", "gpu"];
    private static readonly string[] Activations = ["", "silu", "relu2"];
    private static readonly string[] LmHeads = ["", "source", "int8", "int6", "int4"];
    private static readonly string[] LogLevels = ["trace", "debug", "information", "warning", "error", "critical"];
    private static readonly string[] LogFormats = ["auto", "console", "journald"];

    private static void Validate(HaloOptions o, List<string> errors)
    {
        void Check(bool ok, string message)
        {
            if (!ok)
            {
                errors.Add(message);
            }
        }

        Check(o.Server.Listen.Count > 0, "server.listen: at least one address is needed");
        Check(o.Server.MaxBodyBytes >= 1024, $"server.max_body_bytes: {o.Server.MaxBodyBytes} is below the minimum 1024");
        Check(o.Server.DrainTimeoutSeconds >= 0, $"server.drain_timeout_seconds: {o.Server.DrainTimeoutSeconds} must not be negative");
        Check(o.Server.RetryAfterSeconds >= 1, $"server.retry_after_seconds: {o.Server.RetryAfterSeconds} must be at least 1");
        Check(Array.IndexOf(Backends, o.Model.Backend) >= 0, $"model.backend: '{o.Model.Backend}' is not one of auto, cpu, gpu");
        Check(o.Model.Threads >= 0, $"model.threads: {o.Model.Threads} must not be negative");
        Check(o.Model.ContextLength >= 0, $"model.context_length: {o.Model.ContextLength} must not be negative");
        Check(Array.IndexOf(Activations, o.Model.Activation) >= 0, $"model.activation: '{o.Model.Activation}' is not silu or relu2");
        Check(Array.IndexOf(LmHeads, o.Model.LmHead) >= 0, $"model.lm_head: '{o.Model.LmHead}' is not source, int8, int6 or int4");
        Check(o.Scheduler.Slots is >= 1 and <= 256, $"scheduler.slots: {o.Scheduler.Slots} is not between 1 and 256");
        Check(o.Scheduler.QueueSize >= 0, $"scheduler.queue_size: {o.Scheduler.QueueSize} must not be negative");
        Check(o.Scheduler.PrefillChunkTokens >= 1, $"scheduler.prefill_chunk_tokens: {o.Scheduler.PrefillChunkTokens} must be at least 1");
        Check(o.Scheduler.DefaultMaxTokens >= 0, $"scheduler.default_max_tokens: {o.Scheduler.DefaultMaxTokens} must not be negative");
        for (int i = 0; i < o.Auth.ApiKeys.Count; i++)
        {
            Check(ApiKeyHashes.TryParseHash(o.Auth.ApiKeys[i], out _), $"auth.api_keys[{i}]: not a SHA-256 hex hash (64 hex digits; printf %s KEY | sha256sum)");
        }

        if (o.Auth.ApiKeyFile.Length > 0)
        {
            ApiKeyHashes.ReadFile(o.Auth.ApiKeyFile, errors);
        }

        for (int i = 0; i < o.Auth.PublicPaths.Count; i++)
        {
            Check(o.Auth.PublicPaths[i].StartsWith('/'), $"auth.public_paths[{i}]: '{o.Auth.PublicPaths[i]}' must start with /");
        }

        Check(Array.IndexOf(LogLevels, o.Logging.Level) >= 0, $"logging.level: '{o.Logging.Level}' is not one of {string.Join(", ", LogLevels)}");
        Check(Array.IndexOf(LogFormats, o.Logging.Format) >= 0, $"logging.format: '{o.Logging.Format}' is not one of auto, console, journald");
        Check(o.Doctor.ForbiddenRuntimes.Count > 0, "doctor.forbidden_runtimes: the list must not be empty");
        for (int i = 0; i < o.Doctor.ForbiddenRuntimes.Count; i++)
        {
            string name = o.Doctor.ForbiddenRuntimes[i];
            Check(name.Length > 0 && name.IndexOf('/') < 0, $"doctor.forbidden_runtimes[{i}]: '{name}' must be a program name, not a path");
        }

        for (int i = 0; i < o.Doctor.Allowed.Count; i++)
        {
            Check(Path.IsPathFullyQualified(o.Doctor.Allowed[i]), $"doctor.allowed[{i}]: '{o.Doctor.Allowed[i]}' must be an absolute path");
        }

        Check(o.Doctor.InterpreterRssMb >= 1, $"doctor.interpreter_rss_mb: {o.Doctor.InterpreterRssMb} must be at least 1");
    }

    /// <summary>Typed access to the raw settings; a value of the wrong type is recorded and the default kept.</summary>
    private sealed class SettingReader(Dictionary<string, RawSetting> settings, List<string> errors)
    {
        public string String(string path, string fallback) =>
            settings.TryGetValue(path, out RawSetting? s) ? s.Scalar ?? fallback : fallback;

        public long Integer(string path, long fallback, long max = int.MaxValue)
        {
            if (!settings.TryGetValue(path, out RawSetting? s))
            {
                return fallback;
            }

            if (long.TryParse(s.Scalar, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value) && value >= -max && value <= max)
            {
                return value;
            }

            errors.Add($"{s.Source}: {path}: expected an integer, got '{s.Scalar}'");
            return fallback;
        }

        public double Number(string path, double fallback)
        {
            if (!settings.TryGetValue(path, out RawSetting? s))
            {
                return fallback;
            }

            if (double.TryParse(s.Scalar, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && double.IsFinite(value))
            {
                return value;
            }

            errors.Add($"{s.Source}: {path}: expected a number, got '{s.Scalar}'");
            return fallback;
        }

        public IReadOnlyList<string> List(string path, IReadOnlyList<string> fallback) =>
            settings.TryGetValue(path, out RawSetting? s) ? s.Items ?? fallback : fallback;

        public IReadOnlyList<ListenAddress> Addresses(string path, IReadOnlyList<ListenAddress> fallback)
        {
            if (!settings.TryGetValue(path, out RawSetting? s) || s.Items is null)
            {
                return fallback;
            }

            var addresses = new List<ListenAddress>(s.Items.Count);
            for (int i = 0; i < s.Items.Count; i++)
            {
                if (ListenAddress.TryParse(s.Items[i], out ListenAddress? address, out string error))
                {
                    addresses.Add(address);
                }
                else
                {
                    errors.Add($"{s.Source}: {path}[{i}]: {error}");
                }
            }

            return addresses;
        }
    }

    private static bool IsSection(string name) =>
        name is "server" or "model" or "scheduler" or "auth" or "logging" or "metrics" or "doctor";

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" };

    private static bool AllScalars(YamlSequenceNode sequence, out List<string> items)
    {
        items = new List<string>(sequence.Children.Count);
        foreach (YamlNode child in sequence.Children)
        {
            if (child is not YamlScalarNode scalar)
            {
                return false;
            }

            items.Add(scalar.Value ?? "");
        }

        return true;
    }

    private static List<string> SplitList(string value)
    {
        var items = new List<string>();
        foreach (string item in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            items.Add(item);
        }

        return items;
    }

    private static string Where(string file, YamlNode node) => $"{file}:{node.Start.Line}:{node.Start.Column}";
}
