using System.Text.Json.Nodes;
using Halo.Installer.Tests.Models;
using Halo.Installer.Tests.Doctor;

namespace Halo.Installer.Tests.Provision;

/// <summary>`halo provision` as a process, then `halo doctor --root` on what it made.</summary>
public class ProvisionCommandTests
{
    private static FakeMachine FreshDebian()
    {
        var m = new FakeMachine();
        m.File("/etc/os-release", "ID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n")
            .File("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
            .File("/etc/group", "root:x:0:\n");
        return m;
    }

    [Fact]
    public async Task Provision_YesIntoRoot_ThenDoctorSeesUserUnitsAndConfig()
    {
        using FakeMachine m = FreshDebian();
        HaloCli.Result provision = await HaloCli.RunAsync(null, "provision", "--root", m.Root, "--yes");
        Assert.True(provision.ExitCode == 0, provision.ToString());
        Assert.Contains("Doctor summary", provision.Stdout);

        HaloCli.Result doctor = await HaloCli.RunAsync(null, "doctor", "--root", m.Root, "--json");
        JsonArray checks = JsonNode.Parse(doctor.Stdout)!["checks"]!.AsArray();
        string StatusOf(string id) => checks.Single(c => c!["id"]!.GetValue<string>() == id)!["status"]!.GetValue<string>();
        Assert.Equal("ok", StatusOf("user.halo"));
        Assert.Equal("ok", StatusOf("service.watchdog"));
        Assert.Equal("ok", StatusOf("config.file"));
        Assert.Equal("ok", StatusOf("units.forbidden-runtime"));
        Assert.Equal("fail", StatusOf("models.present"));

        HaloCli.Result again = await HaloCli.RunAsync(null, "provision", "--root", m.Root, "--dry-run");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("Dry run: 0 change(s) planned", again.Stdout);
    }

    [Fact]
    public async Task Provision_NoTerminalNoYes_RefusesAndChangesNothing()
    {
        using FakeMachine m = FreshDebian();
        HaloCli.Result result = await HaloCli.RunAsync(null, "provision", "--root", m.Root);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no --yes", result.Stderr);
        Assert.False(Directory.Exists(m.HostPath("/etc/halo")));
    }

    [Fact]
    public async Task Provision_DryRun_PrintsEveryCommandAndFile()
    {
        using FakeMachine m = FreshDebian();
        HaloCli.Result result = await HaloCli.RunAsync(null, "provision", "--root", m.Root, "--dry-run");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("write  /etc/halo/halo.yaml", result.Stdout);
        Assert.Contains("write  /etc/systemd/system/halo-server.service", result.Stdout);
        Assert.Contains("edit   add system user halo", result.Stdout);
        Assert.Contains("nothing changed", result.Stdout);
        Assert.False(Directory.Exists(m.HostPath("/etc/halo")));
    }
}
