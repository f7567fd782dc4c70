namespace Halo.Installer.Tests.Packaging;

/// <summary>One `Key=Value` line of a systemd unit file, with where it stands and whether a comment explains it.</summary>
internal sealed record UnitDirective(string Section, string Key, string Value, int Line, bool Explained);

/// <summary>
/// A systemd unit file read the way systemd reads it (sections, repeated keys kept in order), plus which
/// directives sit in a block that opens with a comment: our units give the reason for every directive.
/// </summary>
internal sealed class UnitFile
{
    private UnitFile(string path, IReadOnlyList<UnitDirective> directives)
    {
        Path = path;
        Directives = directives;
    }

    public string Path { get; }

    public IReadOnlyList<UnitDirective> Directives { get; }

    public static UnitFile Load(string path)
    {
        string[] lines = File.ReadAllLines(path);
        var directives = new List<UnitDirective>();
        string section = "";
        bool blockHasComment = false;
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0)
            {
                blockHasComment = false;
            }
            else if (line[0] is '#' or ';')
            {
                blockHasComment = true;
            }
            else if (line[0] == '[')
            {
                section = line.Trim('[', ']');
                blockHasComment = false;
            }
            else
            {
                int eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new FormatException($"{path}:{i + 1}: not a Key=Value line: {line}");
                }

                directives.Add(new UnitDirective(section, line[..eq].Trim(), line[(eq + 1)..].Trim(), i + 1, blockHasComment));
            }
        }

        return new UnitFile(path, directives);
    }

    /// <summary>Every value of <paramref name="key"/> in <paramref name="section"/>, in file order.</summary>
    public IReadOnlyList<string> All(string section, string key)
    {
        var values = new List<string>();
        foreach (UnitDirective d in Directives)
        {
            if (d.Section == section && d.Key == key)
            {
                values.Add(d.Value);
            }
        }

        return values;
    }

    /// <summary>The single value of <paramref name="key"/>; fails when it is missing or repeated.</summary>
    public string Single(string section, string key)
    {
        IReadOnlyList<string> values = All(section, key);
        return values.Count == 1
            ? values[0]
            : throw new InvalidOperationException($"{Path}: [{section}] {key}= appears {values.Count} times, expected once");
    }
}
