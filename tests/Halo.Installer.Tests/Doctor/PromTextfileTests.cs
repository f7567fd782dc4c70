using Halo.Installer.Doctor;
using Halo.Testing;

namespace Halo.Installer.Tests.Doctor;

public class PromTextfileTests
{
    private static DoctorReport Report() => new(
    [
        new CheckResult("gpu.present", "GPU", CheckStatus.Warn, "none", "x"),
        new CheckResult("os.kernel", "Kernel", CheckStatus.Ok, "fine", ""),
        new CheckResult("rocm.rocminfo", "rocminfo", CheckStatus.Skip, "n/a", ""),
    ]);

    [Fact]
    public void Render_OneSeriesPerCheck_WithStatusGauges()
    {
        string text = PromTextfile.Render(Report(), DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));

        Assert.Contains("halo_doctor_check_ok{check=\"gpu.present\"} 0\n", text);
        Assert.Contains("halo_doctor_check_ok{check=\"os.kernel\"} 1\n", text);
        Assert.Contains("halo_doctor_check_ok{check=\"rocm.rocminfo\"} 1\n", text);
        Assert.Contains("halo_doctor_check_status{check=\"gpu.present\",status=\"warn\"} 1\n", text);
        Assert.Contains("halo_doctor_check_status{check=\"gpu.present\",status=\"ok\"} 0\n", text);
        Assert.Contains("halo_doctor_checks{status=\"warn\"} 1\n", text);
        Assert.Contains("halo_doctor_exit_code 1\n", text);
        Assert.Contains("halo_doctor_last_run_timestamp_seconds 1700000000\n", text);
        Assert.Contains("# TYPE halo_doctor_check_ok gauge\n", text);
    }

    [Fact]
    public void Write_ReplacesOldFileAndLeavesNoTemporary()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File(PromTextfile.FileName), "old");

        string path = PromTextfile.Write(dir.Path, Report(), DateTimeOffset.UtcNow);

        Assert.Equal(dir.File(PromTextfile.FileName), path);
        Assert.StartsWith("# HELP", File.ReadAllText(path));
        Assert.Equal([PromTextfile.FileName], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }
}
