using Halo.Installer.Doctor.Runtime;

namespace Halo.Installer.Tests.Doctor.Runtime;

public class ProcessScanTests
{
    private static void Process(FakeMachine m, int pid, string exe, long rssKib, string cmdline, string cgroup = "0::/user.slice/session-1.scope")
    {
        m.File($"/proc/{pid}/status", $"Name:\t{Path.GetFileName(exe)}\nVmRSS:\t{rssKib} kB\n")
            .File($"/proc/{pid}/cmdline", cmdline.Replace(' ', '\0') + "\0")
            .File($"/proc/{pid}/cgroup", cgroup + "\n")
            .Symlink($"/proc/{pid}/exe", exe);
    }

    [Fact]
    public void Run_InterpreterOverThreshold_ReportedWithUnit()
    {
        using var m = new FakeMachine();
        Process(m, 100, "/usr/bin/python3.11", 300 * 1024, "/usr/bin/python3 /opt/app/server.py", "0::/system.slice/app.service");
        Process(m, 101, "/usr/bin/python3.11", 50 * 1024, "python3 small.py");
        Process(m, 102, "/usr/local/bin/halo-server", 4_000_000, "/usr/local/bin/halo-server");
        Process(m, 103, "/usr/bin/node (deleted)", 200 * 1024, "node app.js");
        m.File("/proc/meminfo", "MemTotal: 1 kB\n");

        var offenders = new ProcessScan(m.SystemRoot, RuntimeCatalog.Default, []).Run(100);

        Assert.Equal(2, offenders.Count);
        ProcessOffender python = offenders.Single(o => o.Pid == 100);
        Assert.Equal("python3.11", python.Runtime);
        Assert.Equal(300, python.RssMib);
        Assert.Equal("app.service", python.Unit);
        Assert.Equal("/usr/bin/python3 /opt/app/server.py", python.Command);
        Assert.Equal("/usr/bin/node", offenders.Single(o => o.Pid == 103).Exe);
    }

    [Fact]
    public void Run_AllowedExecutable_NotReported()
    {
        using var m = new FakeMachine();
        Process(m, 100, "/usr/bin/python3.11", 300 * 1024, "python3 x");
        Assert.Empty(new ProcessScan(m.SystemRoot, RuntimeCatalog.Default, ["/usr/bin/python3.11"]).Run(100));
    }
}
