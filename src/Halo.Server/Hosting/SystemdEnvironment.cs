using System.Globalization;

namespace Halo.Server.Hosting;

/// <summary>What systemd told this process through its environment (sd_notify, sd_listen_fds, sd_watchdog_enabled,
/// journal stream), read once at start.</summary>
internal static class SystemdEnvironment
{
    /// <summary>The first file descriptor systemd passes (SD_LISTEN_FDS_START).</summary>
    public const int ListenFdsStart = 3;

    public static bool HasNotifySocket => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"));

    /// <summary>The watchdog period when systemd enabled it for this process (WATCHDOG_USEC, WATCHDOG_PID).</summary>
    public static TimeSpan? WatchdogPeriod()
    {
        string? usec = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        if (!long.TryParse(usec, NumberStyles.None, CultureInfo.InvariantCulture, out long micros) || micros <= 0)
        {
            return null;
        }

        string? pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (!string.IsNullOrEmpty(pid) && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return null;   // meant for another process (we were started by a wrapper that did not exec)
        }

        return TimeSpan.FromMicroseconds(micros);
    }

    /// <summary>
    /// The listening sockets passed by socket activation (all of them: LISTEN_FDS may be more than one), or none.
    /// The variables are removed afterwards, as sd_listen_fds(unset_environment=1) does, so child processes do
    /// not mistake the sockets for theirs.
    /// </summary>
    public static IReadOnlyList<int> TakeListenFds()
    {
        string? pid = Environment.GetEnvironmentVariable("LISTEN_PID");
        string? fds = Environment.GetEnvironmentVariable("LISTEN_FDS");
        Environment.SetEnvironmentVariable("LISTEN_PID", null);
        Environment.SetEnvironmentVariable("LISTEN_FDS", null);
        Environment.SetEnvironmentVariable("LISTEN_FDNAMES", null);
        if (pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture)
            || !int.TryParse(fds, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count <= 0)
        {
            return [];
        }

        var list = new int[count];
        for (int i = 0; i < count; i++)
        {
            list[i] = ListenFdsStart + i;
        }

        return list;
    }

    /// <summary>
    /// Whether stderr is systemd's journal stream (JOURNAL_STREAM = "device:inode" of that socket), i.e. the
    /// process runs as a service whose output goes to journald; then logs go to journald natively with fields.
    /// </summary>
    public static bool StderrIsJournal()
    {
        string? stream = Environment.GetEnvironmentVariable("JOURNAL_STREAM");
        int colon = stream?.IndexOf(':') ?? -1;
        if (colon < 0)
        {
            return false;
        }

        string inode = stream![(colon + 1)..];
        try
        {
            // A socket's /proc/self/fd link reads "socket:[INODE]".
            string? target = new FileInfo("/proc/self/fd/2").LinkTarget;
            return target == $"socket:[{inode}]";
        }
        catch (IOException)
        {
            return false;
        }
    }
}

/// <summary>The sockets systemd passed (socket activation); empty when the daemon binds its own.</summary>
internal sealed record PassedSockets(IReadOnlyList<int> Fds);
