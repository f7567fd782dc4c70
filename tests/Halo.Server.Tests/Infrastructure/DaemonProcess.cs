using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Halo.Server.Tests.Infrastructure;

/// <summary>The published daemon (<c>halo-server.dll</c> beside the tests) as a real child process.</summary>
internal sealed partial class DaemonProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];

    private DaemonProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Add(e.Data);
        process.ErrorDataReceived += (_, e) => Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string ServerDll => Path.Combine(AppContext.BaseDirectory, "halo-server.dll");

    public int Pid => _process.Id;

    public Process Process => _process;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output);
            }
        }
    }

    /// <summary>Starts <c>dotnet halo-server.dll ARGUMENTS</c>, behind <paramref name="wrapper"/> when given (a
    /// command that execs the rest, such as systemd-socket-activate), with extra environment; HOME and
    /// XDG_CACHE_HOME point into <paramref name="home"/>.</summary>
    public static DaemonProcess Start(IEnumerable<string> arguments, string home, IDictionary<string, string>? environment = null, IReadOnlyList<string>? wrapper = null)
    {
        List<string> command = [.. wrapper ?? [], "dotnet", ServerDll, .. arguments];
        var info = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in command.Skip(1))
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["HOME"] = home;
        info.Environment["XDG_CACHE_HOME"] = home;
        info.Environment.Remove("NOTIFY_SOCKET");
        info.Environment.Remove("LISTEN_FDS");
        info.Environment.Remove("LISTEN_PID");
        info.Environment.Remove("WATCHDOG_USEC");
        info.Environment.Remove("JOURNAL_STREAM");
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        return new DaemonProcess(Process.Start(info)!);
    }

    /// <summary>The URL from the daemon's "listening on" line.</summary>
    public Uri WaitForUrl(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            Match m = ListeningLine().Match(Output);
            if (m.Success)
            {
                return new Uri(m.Groups[1].Value + "/");
            }

            if (_process.HasExited)
            {
                throw new InvalidOperationException($"daemon exited with {_process.ExitCode}: {Output}");
            }

            Thread.Sleep(20);
        }

        throw new TimeoutException("daemon did not report its address: " + Output);
    }

    public void Signal(int signal) => Assert.Equal(0, Kill(_process.Id, signal));

    public const int SigTerm = 15;

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException("daemon did not exit: " + Output);
        }

        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Resident memory of the process from /proc: (total, anonymous) in bytes.</summary>
    public (long Rss, long RssAnon) Memory()
    {
        long rss = 0, anon = 0;
        foreach (string line in File.ReadAllLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                rss = ParseKb(line);
            }
            else if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
            {
                anon = ParseKb(line);
            }
        }

        return (rss, anon);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private static long ParseKb(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
        }
    }

    [GeneratedRegex(@"halo-server: listening on (http://[^\s]+)")]
    private static partial Regex ListeningLine();

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
