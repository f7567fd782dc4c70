namespace Halo.Installer.Doctor;

/// <summary>The distribution families provision knows how to set up.</summary>
public enum DistroFamily
{
    Unknown,
    Debian,
    Fedora,
    Arch,
}

/// <summary>/etc/os-release (or /usr/lib/os-release): ID, ID_LIKE, VERSION_ID, codename, pretty name.</summary>
public sealed record OsRelease(string Id, IReadOnlyList<string> IdLike, string VersionId, string Codename, string PrettyName)
{
    public DistroFamily Family
    {
        get
        {
            foreach (string id in IdLike.Prepend(Id))
            {
                switch (id)
                {
                    case "debian" or "ubuntu":
                        return DistroFamily.Debian;
                    case "fedora" or "rhel" or "centos":
                        return DistroFamily.Fedora;
                    case "arch" or "archlinux":
                        return DistroFamily.Arch;
                }
            }

            return DistroFamily.Unknown;
        }
    }

    public static OsRelease? Read(SystemRoot root)
    {
        string? text = root.ReadText("/etc/os-release") ?? root.ReadText("/usr/lib/os-release");
        return text is null ? null : Parse(text);
    }

    public static OsRelease Parse(string text)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.Trim();
            int eq = line.IndexOf('=');
            if (eq <= 0 || line[0] == '#')
            {
                continue;
            }

            string value = line[(eq + 1)..].Trim();
            if (value.Length >= 2 && value[0] is '"' or '\'' && value[^1] == value[0])
            {
                value = value[1..^1];
            }

            values[line[..eq]] = value.Replace("\\\"", "\"", StringComparison.Ordinal);
        }

        string Get(string key) => values.TryGetValue(key, out string? v) ? v : "";
        string id = Get("ID").ToLowerInvariant();
        string codename = Get("VERSION_CODENAME");
        if (codename.Length == 0)
        {
            codename = Get("UBUNTU_CODENAME");
        }

        string pretty = Get("PRETTY_NAME");
        return new OsRelease(
            id.Length == 0 ? "linux" : id,
            Get("ID_LIKE").ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries),
            Get("VERSION_ID"),
            codename,
            pretty.Length > 0 ? pretty : (Get("NAME") + " " + Get("VERSION_ID")).Trim());
    }
}
