using System.Reflection;

namespace Halo.Installer.Provision;

/// <summary>The unit files provision installs: name -> text.</summary>
public interface IUnitSource
{
    IReadOnlyDictionary<string, string> Units { get; }
}

/// <summary>The repository's systemd/ folder, embedded into `halo` at build time (logical names `systemd/NAME`).</summary>
public sealed class EmbeddedUnits : IUnitSource
{
    public const string Prefix = "systemd/";

    private EmbeddedUnits()
    {
        var units = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Assembly assembly = typeof(EmbeddedUnits).Assembly;
        foreach (string name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            using Stream stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            units[name[Prefix.Length..]] = reader.ReadToEnd();
        }

        Units = units;
    }

    public static EmbeddedUnits Instance { get; } = new();

    public IReadOnlyDictionary<string, string> Units { get; }
}

/// <summary>Unit files read from a directory (tests, or a packaging tree).</summary>
public sealed class DirectoryUnits(string directory) : IUnitSource
{
    public IReadOnlyDictionary<string, string> Units { get; } =
        Directory.GetFiles(directory).Where(f => !Path.GetFileName(f).StartsWith('.'))
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllText, StringComparer.Ordinal);
}
