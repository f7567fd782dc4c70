using Halo.Installer.Doctor.Runtime;
using YamlDotNet.RepresentationModel;

namespace Halo.Installer.Doctor;

/// <summary>
/// What the doctor reads from /etc/halo/halo.yaml: the `doctor:` section (`forbidden_runtimes`, `allowed`,
/// `interpreter_rss_mb`), where the daemon listens (`server.listen`) and where models live (`model.models_dir`). The daemon validates the whole
/// file; the doctor only reads these keys and reports a file it cannot parse.
/// </summary>
public sealed record DoctorSettings
{
    public const string ConfigPath = "/etc/halo/halo.yaml";
    public const string DefaultListen = "127.0.0.1:8180";
    public const string DefaultModelsDir = "/var/lib/halo/models";
    public const int DefaultInterpreterRssMib = 100;

    public IReadOnlyList<string> ForbiddenRuntimes { get; init; } = RuntimeCatalog.DefaultForbidden;

    /// <summary>Binary paths (or unit names) the runtime rule lets through.</summary>
    public IReadOnlyList<string> Allowed { get; init; } = [];

    public int InterpreterRssMib { get; init; } = DefaultInterpreterRssMib;

    public string Listen { get; init; } = DefaultListen;

    public string ModelsDir { get; init; } = DefaultModelsDir;

    /// <summary>Null when the file was absent or read fine; otherwise why it could not be used.</summary>
    public string? Error { get; init; }

    public bool FileExists { get; init; }

    /// <summary>auth.api_keys lists key hashes in the file itself.</summary>
    public bool HasApiKeys { get; init; }

    public static DoctorSettings Load(SystemRoot root)
    {
        string? text = root.ReadText(ConfigPath);
        if (text is null)
        {
            return new DoctorSettings { FileExists = root.Exists(ConfigPath), Error = root.Exists(ConfigPath) ? "not readable" : null };
        }

        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
            {
                return new DoctorSettings { FileExists = true };
            }

            if (stream.Documents[0].RootNode is not YamlMappingNode top)
            {
                return new DoctorSettings { FileExists = true, Error = "the top level is not a mapping" };
            }

            var settings = new DoctorSettings { FileExists = true };
            YamlMappingNode? doctor = Child(top, "doctor") as YamlMappingNode;
            if (doctor is not null)
            {
                settings = settings with
                {
                    ForbiddenRuntimes = Strings(Child(doctor, "forbidden_runtimes")) ?? settings.ForbiddenRuntimes,
                    Allowed = Strings(Child(doctor, "allowed")) ?? settings.Allowed,
                    InterpreterRssMib = Scalar(Child(doctor, "interpreter_rss_mb")) is { } rss && int.TryParse(rss, out int mib) && mib > 0
                        ? mib
                        : settings.InterpreterRssMib,
                };
            }

            // The daemon's keys (src/Halo.Core/Configuration): server.listen (a list or one address) and model.models_dir.
            YamlNode? listenNode = Child(Child(top, "server"), "listen");
            string? listen = Scalar(listenNode) ?? Strings(listenNode)?.FirstOrDefault(a => !a.StartsWith("unix:", StringComparison.Ordinal))
                ?? Strings(listenNode)?.FirstOrDefault();
            string? models = Scalar(Child(Child(top, "model"), "models_dir"));
            return settings with
            {
                HasApiKeys = Strings(Child(Child(top, "auth"), "api_keys")) is { Count: > 0 },
                Listen = string.IsNullOrWhiteSpace(listen) ? settings.Listen : listen.Trim(),
                ModelsDir = string.IsNullOrWhiteSpace(models) ? settings.ModelsDir : models.Trim(),
            };
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            return new DoctorSettings { FileExists = true, Error = $"line {e.Start.Line}: {e.Message}" };
        }
    }

    private static YamlNode? Child(YamlNode? node, string key) =>
        node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out YamlNode? value) ? value : null;

    private static string? Scalar(YamlNode? node) => (node as YamlScalarNode)?.Value;

    private static List<string>? Strings(YamlNode? node)
    {
        if (node is not YamlSequenceNode sequence)
        {
            return null;
        }

        var values = new List<string>();
        foreach (YamlNode item in sequence)
        {
            if (item is YamlScalarNode { Value: { Length: > 0 } value })
            {
                values.Add(value);
            }
        }

        return values;
    }
}
