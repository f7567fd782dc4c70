using CliWrap;
using CliWrap.Buffered;

namespace Halo.Installer.Doctor;

/// <summary>
/// Installed package versions from the distro's package database inside the root: dpkg's status file, pacman's
/// local database; rpm's database is SQLite, so on Fedora the live system is asked (`rpm -q`) instead.
/// </summary>
public sealed class PackageDb
{
    private readonly SystemRoot _root;
    private readonly Lazy<Dictionary<string, string>> _dpkg;

    public PackageDb(SystemRoot root)
    {
        _root = root;
        _dpkg = new(ReadDpkg);
    }

    /// <summary>The installed version of <paramref name="name"/>, or null when not installed or not knowable here.</summary>
    public async Task<string?> VersionAsync(string name, CancellationToken cancellationToken)
    {
        if (_dpkg.Value.TryGetValue(name, out string? version))
        {
            return version;
        }

        foreach (string entry in _root.List("/var/lib/pacman/local", name + "-*"))
        {
            string? desc = _root.ReadText(entry + "/desc");
            string[] lines = (desc ?? "").Split('\n');
            int at = Array.IndexOf(lines, "%NAME%");
            int ver = Array.IndexOf(lines, "%VERSION%");
            if (at >= 0 && at + 1 < lines.Length && lines[at + 1].Trim() == name && ver >= 0 && ver + 1 < lines.Length)
            {
                return lines[ver + 1].Trim();
            }
        }

        if (_root.IsLive && _root.Which("rpm", ["/usr/bin", "/bin"]) is { } rpm && _root.DirectoryExists("/var/lib/rpm"))
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(15));
                BufferedCommandResult result = await CliWrap.Cli.Wrap(rpm)
                    .WithArguments(["-q", "--qf", "%{VERSION}-%{RELEASE}", name])
                    .WithValidation(CommandResultValidation.None)
                    .ExecuteBufferedAsync(timeout.Token);
                return result.ExitCode == 0 ? result.StandardOutput.Trim() : null;
            }
            catch (Exception e) when (e is OperationCanceledException or System.ComponentModel.Win32Exception)
            {
                return null;
            }
        }

        return null;
    }

    private Dictionary<string, string> ReadDpkg()
    {
        var versions = new Dictionary<string, string>(StringComparer.Ordinal);
        string? status = _root.ReadText("/var/lib/dpkg/status");
        if (status is null)
        {
            return versions;
        }

        foreach (string stanza in status.Replace("\r\n", "\n", StringComparison.Ordinal).Split("\n\n"))
        {
            string? package = null;
            string? version = null;
            bool installed = false;
            foreach (string line in stanza.Split('\n'))
            {
                if (line.StartsWith("Package:", StringComparison.Ordinal))
                {
                    package = line[8..].Trim();
                }
                else if (line.StartsWith("Version:", StringComparison.Ordinal))
                {
                    version = line[8..].Trim();
                }
                else if (line.StartsWith("Status:", StringComparison.Ordinal))
                {
                    installed = line.EndsWith(" installed", StringComparison.Ordinal);
                }
            }

            if (package is not null && version is not null && installed)
            {
                versions[package] = version;
            }
        }

        return versions;
    }
}
