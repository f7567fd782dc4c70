namespace Halo.Installer.Doctor.Runtime;

/// <summary>One assignment in a unit file or drop-in, with where it came from.</summary>
public sealed record UnitSetting(string Section, string Key, string Value, string File);

/// <summary>A unit as systemd loads it: the winning unit file plus its drop-ins, in the order they apply.</summary>
public sealed class UnitDefinition
{
    public UnitDefinition(string name, string scope, string? mainFile, IReadOnlyList<string> dropIns, IReadOnlyList<UnitSetting> settings)
    {
        Name = name;
        Scope = scope;
        MainFile = mainFile;
        DropIns = dropIns;
        Settings = settings;
    }

    public string Name { get; }

    /// <summary>"system", or "user" / "user:/home/alice" for user units.</summary>
    public string Scope { get; }

    /// <summary>The unit file that wins (null for drop-ins whose unit file is elsewhere, e.g. generated).</summary>
    public string? MainFile { get; }

    public IReadOnlyList<string> DropIns { get; }

    public IReadOnlyList<UnitSetting> Settings { get; }

    /// <summary>The last value of a key, as systemd's "last assignment wins" for single-valued settings.</summary>
    public UnitSetting? Last(string section, string key)
    {
        for (int i = Settings.Count - 1; i >= 0; i--)
        {
            if (Settings[i].Section == section && Settings[i].Key == key)
            {
                return Settings[i];
            }
        }

        return null;
    }

    /// <summary>
    /// The effective values of a list setting such as ExecStartPre: each assignment appends, an empty one
    /// clears what came before (that is how a drop-in replaces ExecStart=).
    /// </summary>
    public IReadOnlyList<UnitSetting> List(string key)
    {
        var values = new List<UnitSetting>();
        foreach (UnitSetting setting in Settings)
        {
            if (setting.Key != key)
            {
                continue;
            }

            if (setting.Value.Length == 0)
            {
                values.Clear();
            }
            else
            {
                values.Add(setting);
            }
        }

        return values;
    }
}

/// <summary>
/// Loads units the way systemd's unit search path does (systemd.unit(5)): a unit file in a directory earlier
/// in the path hides the same name later (so /etc overrides /usr/lib), a link to /dev/null masks it, drop-ins
/// come from `NAME.d/`, the dash-prefix directories (`a-.service.d/`) and the type directory (`service.d/`)
/// of every search directory, sorted by file name, the earlier directory winning for the same file name.
/// </summary>
public sealed class SystemdUnits
{
    public static readonly IReadOnlyList<string> SystemSearchPath =
    [
        "/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient", "/run/systemd/generator.early",
        "/etc/systemd/system", "/etc/systemd/system.attached", "/run/systemd/system", "/run/systemd/system.attached",
        "/run/systemd/generator", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
        "/run/systemd/generator.late",
    ];

    public static readonly IReadOnlyList<string> GlobalUserSearchPath =
    [
        "/etc/systemd/user", "/run/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user", "/lib/systemd/user",
    ];

    /// <summary>Unit types that can run commands (Exec*= lives in [Service] and [Socket]).</summary>
    private static readonly string[] ExecutingTypes = [".service", ".socket"];

    private readonly SystemRoot _root;

    public SystemdUnits(SystemRoot root)
    {
        _root = root;
    }

    /// <summary>Every system unit, every global user unit, and the user units of each home directory.</summary>
    public IReadOnlyList<UnitDefinition> LoadAll()
    {
        var units = new List<UnitDefinition>();
        units.AddRange(Load(SystemSearchPath, "system"));
        units.AddRange(Load(GlobalUserSearchPath, "user"));
        foreach (string home in HomeDirectories())
        {
            string[] personal = [home + "/.config/systemd/user", home + "/.local/share/systemd/user"];
            if (personal.Any(_root.DirectoryExists))
            {
                // systemd's user search order: ~/.config, /etc, /run, ~/.local/share, then the vendor dirs.
                string[] searchPath = [personal[0], GlobalUserSearchPath[0], GlobalUserSearchPath[1], personal[1], .. GlobalUserSearchPath.Skip(2)];
                units.AddRange(Load(searchPath, "user:" + home, onlyFrom: personal));
            }
        }

        return units;
    }

    /// <summary>Loads one scope. With <paramref name="onlyFrom"/>, only units touched by those directories are returned.</summary>
    public IReadOnlyList<UnitDefinition> Load(IReadOnlyList<string> searchPath, string scope, IReadOnlyList<string>? onlyFrom = null)
    {
        // The same directory reached twice (/lib -> /usr/lib on merged-usr systems) is read once.
        var directories = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string dir in searchPath)
        {
            string? real = _root.Resolve(dir);
            if (real is not null && _root.DirectoryExists(dir) && seen.Add(real))
            {
                directories.Add(dir);
            }
        }

        // name -> first (winning) file; names that only have drop-in directories are units too.
        var unitFiles = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string dir in directories)
        {
            foreach (string entry in _root.List(dir))
            {
                string fileName = Path.GetFileName(entry);
                if (IsExecutingUnitName(fileName))
                {
                    names.Add(fileName);
                    unitFiles.TryAdd(fileName, entry);
                }
                else if (fileName.EndsWith(".d", StringComparison.Ordinal) && IsExecutingUnitName(fileName[..^2]))
                {
                    string unit = fileName[..^2];
                    if (!unit.EndsWith("-" + Path.GetExtension(unit), StringComparison.Ordinal))
                    {
                        names.Add(unit);
                    }
                }
            }
        }

        var units = new List<UnitDefinition>();
        foreach (string name in names)
        {
            unitFiles.TryGetValue(name, out string? mainFile);
            if (mainFile is not null && IsMasked(mainFile))
            {
                continue;
            }

            List<string> dropIns = DropInsOf(name, directories);
            if (onlyFrom is not null && !TouchedBy(mainFile, dropIns, onlyFrom))
            {
                continue;
            }

            var settings = new List<UnitSetting>();
            if (mainFile is not null)
            {
                settings.AddRange(ParseFile(mainFile));
            }

            foreach (string dropIn in dropIns)
            {
                settings.AddRange(ParseFile(dropIn));
            }

            units.Add(new UnitDefinition(name, scope, mainFile, dropIns, settings));
        }

        return units;
    }

    /// <summary>Parses a unit file: sections, `Key=Value`, `#`/`;` comments, backslash line continuation.</summary>
    public IReadOnlyList<UnitSetting> ParseFile(string file)
    {
        string? text = _root.ReadText(file);
        return text is null ? [] : Parse(text, file);
    }

    public static IReadOnlyList<UnitSetting> Parse(string text, string file)
    {
        var settings = new List<UnitSetting>();
        string section = "";
        string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }

            if (line[0] == '[' && line[^1] == ']')
            {
                section = line[1..^1];
                continue;
            }

            // A trailing backslash joins the next line with a space; comment lines inside are skipped.
            while (line.EndsWith('\\') && i + 1 < lines.Length)
            {
                string next = lines[++i].Trim();
                if (next.Length > 0 && next[0] is '#' or ';')
                {
                    line = line[..^1] + " \\";
                    continue;
                }

                line = line[..^1] + " " + next;
            }

            if (line.EndsWith('\\'))
            {
                line = line[..^1];
            }

            int eq = line.IndexOf('=');
            if (eq <= 0)
            {
                continue;
            }

            settings.Add(new UnitSetting(section, line[..eq].Trim(), line[(eq + 1)..].Trim(), file));
        }

        return settings;
    }

    private List<string> DropInsOf(string name, List<string> directories)
    {
        // Directories whose drop-ins apply: "service.d", "a-.service.d", "a-b-.service.d", "a-b-c.service.d";
        // a template instance "x@i.service" also takes "x@.service.d".
        string type = Path.GetExtension(name);
        string stem = name[..^type.Length];
        var dropInDirs = new List<string> { type[1..] + ".d" };
        for (int dash = stem.IndexOf('-'); dash >= 0; dash = stem.IndexOf('-', dash + 1))
        {
            dropInDirs.Add(stem[..(dash + 1)] + type + ".d");
        }

        int at = stem.IndexOf('@');
        if (at >= 0 && at < stem.Length - 1)
        {
            dropInDirs.Add(stem[..(at + 1)] + type + ".d");
        }

        dropInDirs.Add(name + ".d");

        var byFileName = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (string dir in directories)
        {
            foreach (string dropInDir in dropInDirs)
            {
                foreach (string conf in _root.List(SystemRoot.Combine(dir, dropInDir), "*.conf"))
                {
                    if (!IsMasked(conf))
                    {
                        byFileName.TryAdd(Path.GetFileName(conf), conf);
                    }
                }
            }
        }

        return [.. byFileName.Values];
    }

    private bool IsMasked(string file) => _root.Resolve(file) == "/dev/null" || _root.ReadLink(file) == "/dev/null";

    private static bool TouchedBy(string? mainFile, List<string> dropIns, IReadOnlyList<string> directories)
    {
        foreach (string dir in directories)
        {
            string prefix = dir + "/";
            if (mainFile is not null && mainFile.StartsWith(prefix, StringComparison.Ordinal))
            {
                return true;
            }

            foreach (string dropIn in dropIns)
            {
                if (dropIn.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static bool IsExecutingUnitName(string fileName)
    {
        foreach (string type in ExecutingTypes)
        {
            if (fileName.EndsWith(type, StringComparison.Ordinal) && fileName.Length > type.Length)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Home directories from /etc/passwd plus anything under /home and /root.</summary>
    private IEnumerable<string> HomeDirectories()
    {
        var homes = new SortedSet<string>(StringComparer.Ordinal) { "/root" };
        foreach (string dir in _root.List("/home"))
        {
            homes.Add(dir);
        }

        foreach (string line in (_root.ReadText("/etc/passwd") ?? "").Split('\n'))
        {
            string[] fields = line.Split(':');
            if (fields.Length >= 6 && fields[5].StartsWith('/') && fields[5] != "/" && !fields[5].StartsWith("/nonexistent", StringComparison.Ordinal))
            {
                homes.Add(fields[5].TrimEnd('/'));
            }
        }

        return homes;
    }
}
