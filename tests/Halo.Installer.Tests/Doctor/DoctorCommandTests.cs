using System.Text.Json.Nodes;
using Halo.Installer.Tests.Models;
using Halo.Testing;

namespace Halo.Installer.Tests.Doctor;

/// <summary>`halo doctor` as a process: exit codes, the --json schema, plain output, the textfile.</summary>
public class DoctorCommandTests
{
    [Fact]
    public async Task Doctor_HealthyRootJson_ExitZeroAndSchema()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        HaloCli.Result result = await HaloCli.RunAsync(null, "doctor", "--root", m.Root, "--json");

        Assert.True(result.ExitCode == 0, result.ToString());
        JsonObject json = JsonNode.Parse(result.Stdout)!.AsObject();
        JsonArray checks = json["checks"]!.AsArray();
        Assert.All(checks, c =>
        {
            Assert.NotNull(c!["id"]);
            Assert.Contains(c["status"]!.GetValue<string>(), (string[])["ok", "warn", "fail", "skip"]);
            Assert.NotNull(c["finding"]);
            Assert.NotNull(c["hint"]);
        });
        Assert.Equal(18, checks.Count);
        Assert.Equal(checks.Count, json["summary"]!.AsObject().Sum(kv => kv.Value!.GetValue<int>()));
        Assert.Empty(checks.Single(c => c!["id"]!.GetValue<string>() == "units.forbidden-runtime")!["offenders"]!.AsArray());
        Assert.NotNull(checks.Single(c => c!["id"]!.GetValue<string>() == "processes.interpreter-rss")!["offenders"]);
    }

    [Fact]
    public async Task Doctor_PythonUnit_ExitTwoWithOffender()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Script("/opt/web/serve", "#!/usr/bin/env python3\n").Service("web.service", "ExecStart=/opt/web/serve");
        HaloCli.Result result = await HaloCli.RunAsync(null, "doctor", "--root", m.Root, "--json");

        Assert.True(result.ExitCode == 2, result.ToString());
        JsonNode check = JsonNode.Parse(result.Stdout)!["checks"]!.AsArray().Single(c => c!["id"]!.GetValue<string>() == "units.forbidden-runtime")!;
        Assert.Equal("fail", check["status"]!.GetValue<string>());
        JsonNode offender = Assert.Single(check["offenders"]!.AsArray())!;
        Assert.Equal("web.service", offender["unit"]!.GetValue<string>());
        Assert.Equal("/etc/systemd/system/web.service", offender["file"]!.GetValue<string>());
        Assert.Equal("ExecStart", offender["directive"]!.GetValue<string>());
        Assert.Equal("/opt/web/serve", offender["command"]!.GetValue<string>());
        Assert.Equal("python3.12", offender["runtime"]!.GetValue<string>());
    }

    [Fact]
    public async Task Doctor_WarningsOnlyPlainOutput_ExitOneFlutterStyle()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/etc/halo/halo.yaml");
        using var textfile = new TempDir();
        HaloCli.Result result = await HaloCli.RunAsync(null, "doctor", "--root", m.Root, "--textfile", textfile.Path);

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("[✓] Operating system (os.release): Ubuntu 24.04.3 LTS", result.Stdout);
        Assert.Contains("[!] Configuration (config.file)", result.Stdout);
        Assert.Contains("    → sudo halo provision", result.Stdout);
        Assert.Contains("[-] rocminfo (rocm.rocminfo)", result.Stdout);
        Assert.Contains("! Doctor found issues:", result.Stdout);
        Assert.DoesNotContain("\u001b[", result.Stdout);
        string prom = File.ReadAllText(textfile.File("halo_doctor.prom"));
        Assert.Contains("halo_doctor_check_ok{check=\"config.file\"} 0", prom);
        Assert.Contains("halo_doctor_check_ok{check=\"units.forbidden-runtime\"} 1", prom);
    }

    [Fact]
    public async Task Doctor_MissingRoot_UsageError()
    {
        HaloCli.Result result = await HaloCli.RunAsync(null, "doctor", "--root", "/nonexistent/halo-root");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no such directory", result.Stderr);
    }

    [Fact]
    public async Task Doctor_EmptyRoot_ReportsEveryCheckWithoutCrashing()
    {
        using var empty = new TempDir();
        HaloCli.Result result = await HaloCli.RunAsync(null, "doctor", "--root", empty.Path, "--json");

        Assert.True(result.ExitCode == 2, result.ToString());
        JsonArray checks = JsonNode.Parse(result.Stdout)!["checks"]!.AsArray();
        Assert.DoesNotContain(checks, c => c!["finding"]!.GetValue<string>().Contains("the check itself failed", StringComparison.Ordinal));
    }
}
