using System.Globalization;

namespace Halo.Installer.Doctor.Runtime;

/// <summary>An interpreter process over the RSS threshold (the `offenders` of `processes.interpreter-rss`).</summary>
/// <param name="Unit">The systemd unit of its cgroup, when /proc/PID/cgroup names one.</param>
public sealed record ProcessOffender(int Pid, string Exe, string Runtime, long RssMib, string Command, string? Unit);

/// <summary>
/// Reads /proc/PID/{exe,status,cmdline,cgroup} (inside the root) and reports interpreter processes whose
/// resident set is over the threshold. The executable comes from /proc/PID/exe (the interpreter even when a
/// script was started by its `#!` line); when that link is not readable, argv[0] and then the status Name.
/// </summary>
public sealed class ProcessScan
{
    private readonly SystemRoot _root;
    private readonly RuntimeCatalog _catalog;
    private readonly HashSet<string> _allowed;

    public ProcessScan(SystemRoot root, RuntimeCatalog catalog, IEnumerable<string> allowed)
    {
        _root = root;
        _catalog = catalog;
        _allowed = new HashSet<string>(allowed, StringComparer.Ordinal);
    }

    public int ProcessesSeen { get; private set; }

    public IReadOnlyList<ProcessOffender> Run(long thresholdMib)
    {
        var offenders = new List<ProcessOffender>();
        foreach (string dir in _root.List("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                continue;
            }

            string? status = _root.ReadText(dir + "/status");
            if (status is null)
            {
                continue; // exited while we looked
            }

            ProcessesSeen++;
            string[] argv = (_root.ReadText(dir + "/cmdline") ?? "").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            string exe = ExecutableOf(dir, argv, status);
            string? runtime = _catalog.Match(Path.GetFileName(exe));
            long rssKib = StatusField(status, "VmRSS");
            if (runtime is null || rssKib / 1024 <= thresholdMib || _allowed.Contains(exe))
            {
                continue;
            }

            offenders.Add(new ProcessOffender(pid, exe, Path.GetFileName(exe), rssKib / 1024, string.Join(' ', argv), UnitOf(dir)));
        }

        return offenders;
    }

    private string ExecutableOf(string dir, string[] argv, string status)
    {
        string? exe = _root.ReadLink(dir + "/exe");
        if (exe is { Length: > 0 })
        {
            return exe.EndsWith(" (deleted)", StringComparison.Ordinal) ? exe[..^" (deleted)".Length] : exe;
        }

        if (argv.Length > 0)
        {
            return argv[0];
        }

        foreach (string line in status.Split('\n'))
        {
            if (line.StartsWith("Name:", StringComparison.Ordinal))
            {
                return line[5..].Trim();
            }
        }

        return "";
    }

    /// <summary>A "Key:   1234 kB" field of /proc/PID/status, in kB; 0 when absent (kernel threads).</summary>
    public static long StatusField(string status, string key)
    {
        foreach (string line in status.Split('\n'))
        {
            if (!line.StartsWith(key + ":", StringComparison.Ordinal))
            {
                continue;
            }

            string[] parts = line[(key.Length + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            return parts.Length > 0 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long value) ? value : 0;
        }

        return 0;
    }

    /// <summary>"0::/system.slice/foo.service" -> "foo.service".</summary>
    private string? UnitOf(string dir)
    {
        string? unit = null;
        foreach (string line in (_root.ReadText(dir + "/cgroup") ?? "").Split('\n'))
        {
            foreach (string part in line.Split('/'))
            {
                string name = part.Trim();
                if (name.EndsWith(".service", StringComparison.Ordinal) || name.EndsWith(".scope", StringComparison.Ordinal))
                {
                    unit = name; // the innermost one is the process's own
                }
            }
        }

        return unit;
    }
}
