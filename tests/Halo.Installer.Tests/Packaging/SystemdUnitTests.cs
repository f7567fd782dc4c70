using System.Globalization;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using Halo.Testing;
using Xunit.Abstractions;

namespace Halo.Installer.Tests.Packaging;

/// <summary>
/// The units in systemd/ checked by systemd itself: `systemd-analyze verify` (syntax, unknown keys, missing
/// executables, bad references) and `systemd-analyze security --offline=yes` (the exposure score), plus the
/// contract of DESIGN.md section 5 and issue 8 read from the files.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class SystemdUnitTests(ITestOutputHelper output)
{
    private static readonly string[] UnitNames =
        ["halo-server.service", "halo-server.socket", "halo-doctor.service", "halo-doctor.timer"];

    private static string UnitPath(string name) => Path.Combine(TestPaths.RepoRoot, "systemd", name);

    [Fact]
    public void Verify_AllUnits_ReportNothing()
    {
        using var dir = new TempDir();
        string[] units = StageUnits(dir);

        ProcessResult result = SystemdAnalyze(["verify", "--man=no", .. units]);

        output.WriteLine(result.Output);
        Assert.True(result.ExitCode == 0 && result.Output.Trim().Length == 0,
            $"systemd-analyze verify complained (exit {result.ExitCode}):\n{result.Output}");
    }

    [Fact]
    public void Verify_UnitWithUnknownKeyAndMissingBinary_Reported()
    {
        using var dir = new TempDir();
        string[] units = StageUnits(dir);
        string server = units.Single(u => u.EndsWith("halo-server.service", StringComparison.Ordinal));
        File.WriteAllText(server, File.ReadAllText(server)
            .Replace("Type=notify", "Type=notify\nWatchdogSecs=30s", StringComparison.Ordinal)
            .Replace(Path.Combine(dir.Path, "bin", "halo-server"), "/nonexistent/halo-server", StringComparison.Ordinal));

        ProcessResult result = SystemdAnalyze(["verify", "--man=no", server]);

        Assert.Contains("WatchdogSecs", result.Output, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/halo-server", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void SecurityOffline_ServerUnit_ExposureAtMostTwo()
    {
        using var dir = new TempDir();
        string server = StageUnits(dir).Single(u => u.EndsWith("halo-server.service", StringComparison.Ordinal));

        double exposure = Exposure(server);

        output.WriteLine($"halo-server.service exposure (systemd-analyze security --offline=yes): {exposure:0.0}");
        Console.WriteLine($"halo-server.service exposure: {exposure:0.0}");
        Assert.InRange(exposure, 0.0, 2.0);
    }

    [Fact]
    public void SecurityOffline_DoctorUnit_ExposureReported()
    {
        using var dir = new TempDir();
        string doctor = StageUnits(dir).Single(u => u.EndsWith("halo-doctor.service", StringComparison.Ordinal));

        double exposure = Exposure(doctor);

        // Doctor runs as root on purpose (it reads every unit and process); it must still stay "OK" (< 5).
        output.WriteLine($"halo-doctor.service exposure: {exposure:0.0}");
        Assert.InRange(exposure, 0.0, 4.9);
    }

    [Fact]
    public void ServerUnit_Contract_DirectivesAsDesigned()
    {
        UnitFile unit = UnitFile.Load(UnitPath("halo-server.service"));

        Assert.Equal("notify", unit.Single("Service", "Type"));
        Assert.Equal("main", unit.Single("Service", "NotifyAccess"));
        Assert.Matches(@"^\d+s$", unit.Single("Service", "WatchdogSec"));
        Assert.Equal("on-failure", unit.Single("Service", "Restart"));
        Assert.Equal("halo", unit.Single("Service", "User"));
        Assert.Equal("halo", unit.Single("Service", "StateDirectory"));
        Assert.Equal("halo", unit.Single("Service", "ConfigurationDirectory"));
        Assert.Equal(["render", "video"], unit.Single("Service", "SupplementaryGroups").Split(' '));
        Assert.Equal("/usr/lib/halo/halo-server", unit.Single("Service", "ExecStart"));
        Assert.Equal("closed", unit.Single("Service", "DevicePolicy"));
        Assert.Equal(["/dev/kfd rw", "char-drm rw"], unit.All("Service", "DeviceAllow"));
        Assert.Equal("no", unit.Single("Service", "MemoryDenyWriteExecute"));
        Assert.Equal("halo-server.socket", unit.Single("Unit", "Requires"));
    }

    [Fact]
    public void SocketUnit_Contract_LoopbackPort8180()
    {
        UnitFile unit = UnitFile.Load(UnitPath("halo-server.socket"));

        Assert.Equal(["127.0.0.1:8180"], unit.All("Socket", "ListenStream"));
        Assert.Equal("no", unit.Single("Socket", "Accept"));
        Assert.Equal("sockets.target", unit.Single("Install", "WantedBy"));
    }

    [Fact]
    public void DoctorUnits_Contract_TimerRunsOneshotWritingTextfile()
    {
        UnitFile service = UnitFile.Load(UnitPath("halo-doctor.service"));
        UnitFile timer = UnitFile.Load(UnitPath("halo-doctor.timer"));

        Assert.Equal("oneshot", service.Single("Service", "Type"));
        Assert.Equal("/usr/lib/halo/halo doctor --textfile /var/lib/prometheus/node-exporter",
            service.Single("Service", "ExecStart"));
        Assert.Equal("prometheus/node-exporter", service.Single("Service", "StateDirectory"));
        Assert.Equal("halo-doctor.service", timer.Single("Timer", "Unit"));
        Assert.Equal("timers.target", timer.Single("Install", "WantedBy"));
    }

    [Theory]
    [InlineData("halo-server.service")]
    [InlineData("halo-server.socket")]
    [InlineData("halo-doctor.service")]
    [InlineData("halo-doctor.timer")]
    public void Units_EveryDirective_HasReasonComment(string name)
    {
        UnitFile unit = UnitFile.Load(UnitPath(name));

        string[] unexplained = unit.Directives
            .Where(d => d.Section is not ("Unit" or "Install") && !d.Explained)
            .Select(d => $"{name}:{d.Line} {d.Key}=")
            .ToArray();

        Assert.True(unexplained.Length == 0, "directives without a comment above their block:\n" + string.Join('\n', unexplained));
    }

    /// <summary>
    /// Copies the units into <paramref name="dir"/> with the binary paths pointed at executables that exist,
    /// as the installer does for --prefix: verify checks that ExecStart= binaries exist and are executable.
    /// </summary>
    internal static string[] StageUnits(TempDir dir)
    {
        string bin = Path.Combine(dir.Path, "bin");
        Directory.CreateDirectory(bin);
        foreach (string exe in new[] { "halo", "halo-server" })
        {
            string stub = Path.Combine(bin, exe);
            File.WriteAllText(stub, "#!/bin/sh\nexit 0\n");
            File.SetUnixFileMode(stub, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var staged = new List<string>();
        foreach (string name in UnitNames)
        {
            string text = File.ReadAllText(UnitPath(name)).Replace("/usr/lib/halo/", bin + "/", StringComparison.Ordinal);
            string target = Path.Combine(dir.Path, name);
            File.WriteAllText(target, text);
            staged.Add(target);
        }

        return [.. staged];
    }

    private static ProcessResult SystemdAnalyze(IEnumerable<string> arguments) =>
        ProcessRunner.Run(ProcessRunner.Require("systemd-analyze", "systemd"), arguments, TimeSpan.FromMinutes(1));

    private static double Exposure(string unitPath) =>
        ParseExposure(SystemdAnalyze(["security", "--offline=yes", "--no-pager", unitPath]).Output);

    /// <summary>The "Overall exposure level" systemd-analyze security prints (0 = locked down, 10 = exposed).</summary>
    internal static double ParseExposure(string securityOutput)
    {
        Match match = OverallExposure().Match(securityOutput);
        Assert.True(match.Success, $"no exposure level in systemd-analyze security output:\n{securityOutput}");
        return double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"Overall exposure level for \S+: (\d+(?:\.\d+)?)")]
    private static partial Regex OverallExposure();
}
