using Halo.Installer.Doctor;
using Halo.Installer.Doctor.Checks;

namespace Halo.Installer.Tests.Doctor;

/// <summary>Fake machines, each broken in one way, through every check (library calls).</summary>
public class DoctorReportTests
{
    private static CheckStatus StatusOf(DoctorReport report, string id) => report[id]?.Status ?? throw new Xunit.Sdk.XunitException($"no check {id}");

    [Fact]
    public async Task RunAsync_HealthyStrixHalo_AllFileChecksOkLiveProbesSkipped()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        DoctorReport report = await m.DoctorAsync();

        string Describe() => string.Join('\n', report.Checks.Select(c => $"{c.Id} {c.Status} {c.Finding}"));
        foreach (CheckResult check in report.Checks)
        {
            CheckStatus expected = check.Id is "rocm.rocminfo" or "service.active" or "endpoint.health" ? CheckStatus.Skip : CheckStatus.Ok;
            Assert.True(expected == check.Status, $"{check.Id}: {check.Status} {check.Finding}\n{Describe()}");
        }

        Assert.Equal(0, report.ExitCode);
        Assert.Contains("gfx1151", report["gpu.present"]!.Finding);
        Assert.Contains("7.2.0", report["rocm.version"]!.Finding);
        Assert.Contains("tiny-test", report["models.present"]!.Finding);
    }

    [Fact]
    public async Task RunAsync_NoGpu_GpuWarnsAndGpuOnlyChecksSkip()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/sys/class/kfd").Remove("/sys/class/drm").Remove("/dev/kfd").Remove("/opt/rocm").Remove("/opt/rocm-7.2.0")
            .Remove("/etc/OpenCL").File("/var/lib/dpkg/status", "");
        DoctorReport report = await m.DoctorAsync();

        Assert.Equal(CheckStatus.Warn, StatusOf(report, "gpu.present"));
        Assert.Contains("CPU backend", report["gpu.present"]!.Finding);
        Assert.Equal(CheckStatus.Skip, StatusOf(report, "rocm.version"));
        Assert.Equal(CheckStatus.Skip, StatusOf(report, "opencl.icd"));
        Assert.Equal(CheckStatus.Skip, StatusOf(report, "memory.ttm"));
        Assert.Equal(CheckStatus.Skip, StatusOf(report, "firmware.linux-firmware"));
        Assert.Equal(1, report.ExitCode);
    }

    [Fact]
    public async Task RunAsync_OldKernelOnStrixHalo_KernelFails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/proc/sys/kernel/osrelease", "6.17.9-arch1-1\n");
        DoctorReport report = await m.DoctorAsync();

        Assert.Equal(CheckStatus.Fail, StatusOf(report, "os.kernel"));
        Assert.Contains("6.18.4", report["os.kernel"]!.Finding);
        Assert.NotEmpty(report["os.kernel"]!.Hint);
        Assert.Equal(2, report.ExitCode);
    }

    [Fact]
    public async Task RunAsync_KernelVersionOnlyInProcVersion_ParsesIt()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/proc/sys/kernel/osrelease").File("/proc/version", "Linux version 6.18.3-200.fc43.x86_64 (mockbuild@) #1 SMP\n");
        CheckResult result = await m.CheckAsync(new KernelCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("6.18.3-200.fc43.x86_64", result.Finding);
    }

    [Fact]
    public async Task RunAsync_RocmMissingOnStrixHalo_RocmAndOpenClFail()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/opt/rocm").Remove("/opt/rocm-7.2.0").Remove("/etc/OpenCL").File("/var/lib/dpkg/status", "");
        DoctorReport report = await m.DoctorAsync();

        Assert.Equal(CheckStatus.Fail, StatusOf(report, "rocm.version"));
        Assert.Equal(CheckStatus.Fail, StatusOf(report, "opencl.icd"));
        Assert.Contains("halo provision", report["rocm.version"]!.Hint);
    }

    [Fact]
    public async Task RocmCheck_OldRocm_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/opt/rocm-7.2.0/.info/version", "6.4.1-120\n");
        CheckResult result = await m.CheckAsync(new RocmCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("6.4.1", result.Finding);
    }

    [Fact]
    public async Task RocmCheck_ArchPackageDatabase_ReadsVersion()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/opt/rocm").Remove("/opt/rocm-7.2.0").File("/var/lib/dpkg/status", "")
            .File("/var/lib/pacman/local/rocm-core-7.2.1-1/desc", "%NAME%\nrocm-core\n\n%VERSION%\n7.2.1-1\n");
        CheckResult result = await m.CheckAsync(new RocmCheck());

        Assert.Equal(CheckStatus.Ok, result.Status);
        Assert.Contains("7.2.1-1", result.Finding);
    }

    [Fact]
    public async Task GpuCheck_DrmDeviceWithoutKfdNode_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/sys/class/kfd").Remove("/dev/kfd");
        CheckResult result = await m.CheckAsync(new GpuCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("0x1586", result.Finding);
    }

    [Fact]
    public async Task GpuCheck_KfdNodeWithoutDevKfd_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/dev/kfd");
        CheckResult result = await m.CheckAsync(new GpuCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("/dev/kfd", result.Finding);
    }

    [Fact]
    public async Task GpuCheck_OtherAmdGpu_WarnsWithGfxName()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/sys/class/kfd/kfd/topology/nodes/1/properties", "gfx_target_version 110000\nvendor_id 4098\ndevice_id 29772\n")
            .File("/sys/class/drm/card1/device/device", "0x744c\n");
        CheckResult result = await m.CheckAsync(new GpuCheck());

        Assert.Equal(CheckStatus.Warn, result.Status);
        Assert.Contains("gfx1100", result.Finding);
    }

    [Fact]
    public async Task TtmLimitCheck_KernelDefaultHalfOfRam_Warns()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/sys/module/ttm").File("/proc/cmdline", "BOOT_IMAGE=/vmlinuz ro quiet\n");
        CheckResult result = await m.CheckAsync(new TtmLimitCheck());

        Assert.Equal(CheckStatus.Warn, result.Status);
        Assert.Contains("kernel default", result.Finding);
        Assert.Contains("ttm.pages_limit=", result.Hint);
    }

    [Fact]
    public async Task TtmLimitCheck_SysfsSmallerThanCommandLine_SysfsWins()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/sys/module/ttm/parameters/pages_limit", "4194304\n"); // 16 GiB
        CheckResult result = await m.CheckAsync(new TtmLimitCheck());

        Assert.Equal(CheckStatus.Warn, result.Status);
        Assert.Contains("16.0 of", result.Finding);
    }

    [Fact]
    public async Task TtmLimitCheck_LimitAboveRam_Warns()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/sys/module/ttm/parameters/pages_limit", "40000000\n");
        CheckResult result = await m.CheckAsync(new TtmLimitCheck());

        Assert.Equal(CheckStatus.Warn, result.Status);
        Assert.Contains("more than the RAM", result.Finding);
    }

    [Fact]
    public async Task TtmLimitCheck_DeprecatedGttsize_Warns()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        string cmdline = m.SystemRoot.ReadValue("/proc/cmdline")!;
        m.File("/proc/cmdline", cmdline + " amdgpu.gttsize=126976\n");
        CheckResult result = await m.CheckAsync(new TtmLimitCheck());

        Assert.Equal(CheckStatus.Warn, result.Status);
        Assert.Contains("deprecated", result.Finding);
    }

    [Theory]
    [InlineData("Package: linux-firmware\nStatus: install ok installed\nVersion: 20251125.git1-0ubuntu1\n")]
    [InlineData("Package: linux-firmware-amdgpu\nStatus: install ok installed\nVersion: 20251125-1\n")]
    public async Task FirmwareCheck_KnownBadRelease_Fails(string dpkgStatus)
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/var/lib/dpkg/status", dpkgStatus);
        CheckResult result = await m.CheckAsync(new FirmwareCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("20251125", result.Finding);
        Assert.Contains("downgrade", result.Hint);
    }

    [Fact]
    public async Task FirmwareCheck_PacmanKnownBad_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/var/lib/dpkg/status", "").File("/var/lib/pacman/local/linux-firmware-20251125-2/desc", "%NAME%\nlinux-firmware\n\n%VERSION%\n20251125-2\n");
        CheckResult result = await m.CheckAsync(new FirmwareCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
    }

    [Fact]
    public async Task FirmwareCheck_RemovedPackageStillInDpkgStatus_NotCounted()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/var/lib/dpkg/status", "Package: linux-firmware\nStatus: deinstall ok config-files\nVersion: 20251125-1\n");
        CheckResult result = await m.CheckAsync(new FirmwareCheck());

        Assert.Equal(CheckStatus.Ok, result.Status);
    }

    [Fact]
    public async Task FirmwareCheck_NoGfx1151Files_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/usr/lib/firmware/amdgpu");
        CheckResult result = await m.CheckAsync(new FirmwareCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("gc_11_5_1", result.Finding);
    }

    [Fact]
    public async Task HaloUserCheck_NotInRender_FailsWithUsermodHint()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/etc/group", "root:x:0:\nvideo:x:44:halo\nrender:x:992:\nhalo:x:998:\n");
        CheckResult result = await m.CheckAsync(new HaloUserCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("render", result.Finding);
        Assert.DoesNotContain("video", result.Finding);
        Assert.Contains("usermod -aG render halo", result.Hint);
    }

    [Fact]
    public async Task HaloUserCheck_PrimaryGroupRender_Counts()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/etc/passwd", "halo:x:998:992::/var/lib/halo:/usr/sbin/nologin\n").File("/etc/group", "video:x:44:halo\nrender:x:992:\n");
        CheckResult result = await m.CheckAsync(new HaloUserCheck());

        Assert.Equal(CheckStatus.Ok, result.Status);
    }

    [Fact]
    public async Task HaloUserCheck_NoUser_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
        CheckResult result = await m.CheckAsync(new HaloUserCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
    }

    [Theory]
    [InlineData("libpocl.so.2", CheckStatus.Warn)]
    [InlineData("libMesaOpenCL.so.1", CheckStatus.Warn)]
    [InlineData("libRusticlOpenCL.so.1", CheckStatus.Warn)]
    [InlineData("libamdocl64.so", CheckStatus.Ok)]
    public async Task OpenClCheck_OnlyThisIcd_Status(string library, CheckStatus expected)
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/etc/OpenCL").File("/etc/OpenCL/vendors/only.icd", library + "\n");
        CheckResult result = await m.CheckAsync(new OpenClCheck());

        Assert.Equal(expected, result.Status);
        Assert.Contains(library, result.Finding);
    }

    [Fact]
    public async Task ServiceUnitCheck_NoWatchdog_Warns()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Service("halo-server.service", "Type=notify\nExecStart=/usr/local/bin/halo-server");
        CheckResult result = await m.CheckAsync(new ServiceUnitCheck());

        Assert.Equal(CheckStatus.Warn, result.Status);
        Assert.Contains("WatchdogSec", result.Hint);
    }

    [Fact]
    public async Task ServiceUnitCheck_WatchdogFromDropIn_Ok()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/etc/systemd/system/halo-server.service")
            .Service("halo-server.service", "Type=notify\nExecStart=/usr/local/bin/halo-server", "/usr/lib/systemd/system")
            .File("/etc/systemd/system/halo-server.service.d/watchdog.conf", "[Service]\nWatchdogSec=20s\n");
        CheckResult result = await m.CheckAsync(new ServiceUnitCheck());

        Assert.Equal(CheckStatus.Ok, result.Status);
        Assert.Contains("WatchdogSec=20s", result.Finding);
    }

    [Fact]
    public async Task ServiceUnitCheck_Missing_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/etc/systemd/system/halo-server.service");
        CheckResult result = await m.CheckAsync(new ServiceUnitCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
    }

    [Fact]
    public async Task ModelCheck_CorruptedFile_FailsNamingIt()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        System.IO.File.WriteAllText(m.HostPath($"/var/lib/halo/models/{FakeMachine.ModelName}/model.gguf"), "WEIGHTS");
        CheckResult result = await m.CheckAsync(new ModelCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("model.gguf: sha256 is", result.Finding);
        Assert.DoesNotContain(m.Root, result.Finding);
    }

    [Fact]
    public async Task ModelCheck_TruncatedFile_FailsOnSize()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        System.IO.File.WriteAllText(m.HostPath($"/var/lib/halo/models/{FakeMachine.ModelName}/model.gguf"), "w");
        CheckResult result = await m.CheckAsync(new ModelCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("1 bytes", result.Finding);
    }

    [Fact]
    public async Task ModelCheck_NoManifest_Warns()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove($"/var/lib/halo/models/{FakeMachine.ModelName}/manifest.json");
        CheckResult result = await m.CheckAsync(new ModelCheck());

        Assert.Equal(CheckStatus.Warn, result.Status);
        Assert.Contains("no manifest.json", result.Finding);
    }

    [Fact]
    public async Task ModelCheck_ManifestNotJson_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File($"/var/lib/halo/models/{FakeMachine.ModelName}/manifest.json", "{\"schema\": 1, \"files\": [");
        CheckResult result = await m.CheckAsync(new ModelCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("not a valid manifest", result.Finding);
    }

    [Fact]
    public async Task ModelCheck_EmptyModelsDir_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Remove($"/var/lib/halo/models/{FakeMachine.ModelName}");
        CheckResult result = await m.CheckAsync(new ModelCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("halo models pull", result.Hint);
    }

    [Fact]
    public async Task ModelCheck_ModelsDirFromConfig_IsUsed()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/etc/halo/halo.yaml", "model:\n  models_dir: /srv/models\n");
        CheckResult result = await m.CheckAsync(new ModelCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("/srv/models", result.Finding);
    }

    [Fact]
    public async Task ConfigFileCheck_BrokenYaml_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/etc/halo/halo.yaml", "server:\n  listen: [127.0.0.1:8180\n");
        CheckResult result = await m.CheckAsync(new ConfigFileCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("line", result.Finding);
    }

    [Fact]
    public async Task PermissionsCheck_WorldWritableStateDir_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        FakeMachine.SetMode(m.HostPath("/var/lib/halo"), 0b111_111_111);
        CheckResult result = await m.CheckAsync(new PermissionsCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("/var/lib/halo is world-writable (0777)", result.Finding);
        Assert.Contains("chmod o-w /var/lib/halo", result.Hint);
    }

    [Fact]
    public async Task PermissionsCheck_WorldReadableConfigWithApiKeys_Fails()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/etc/halo/halo.yaml", "auth:\n  api_keys: [\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"]\n", (UnixFileMode)0b110_100_100);
        CheckResult result = await m.CheckAsync(new PermissionsCheck());

        Assert.Equal(CheckStatus.Fail, result.Status);
    }

    [Fact]
    public async Task PermissionsCheck_WorldReadableConfigWithoutKeys_Ok()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.File("/etc/halo/halo.yaml", "auth:\n  api_keys: []\n  api_key_file: \"\"\n", (UnixFileMode)0b110_100_100);
        CheckResult result = await m.CheckAsync(new PermissionsCheck());

        Assert.Equal(CheckStatus.Ok, result.Status);
    }

    [Fact]
    public async Task DiskSpaceCheck_FakeRoot_ReportsFreeSpace()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        CheckResult result = await m.CheckAsync(new DiskSpaceCheck());

        Assert.NotEqual(CheckStatus.Skip, result.Status);
        Assert.Contains("GiB free", result.Finding);
    }

    [Fact]
    public async Task RunAsync_UnderRoot_LiveProbesSkipWithReason()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        DoctorReport report = await m.DoctorAsync();

        foreach (string id in (string[])["rocm.rocminfo", "service.active", "endpoint.health"])
        {
            Assert.Equal(CheckStatus.Skip, StatusOf(report, id));
            Assert.Contains("--root", report[id]!.Finding);
        }
    }

    [Fact]
    public void ExitCode_WarningsOnlyVersusFailures_OneAndTwo()
    {
        CheckResult ok = new("a", "A", CheckStatus.Ok, "", "");
        CheckResult skip = new("b", "B", CheckStatus.Skip, "", "");
        CheckResult warn = new("c", "C", CheckStatus.Warn, "", "");
        CheckResult fail = new("d", "D", CheckStatus.Fail, "", "");

        Assert.Equal(0, new DoctorReport([ok, skip]).ExitCode);
        Assert.Equal(1, new DoctorReport([ok, warn, skip]).ExitCode);
        Assert.Equal(2, new DoctorReport([warn, fail]).ExitCode);
    }

    [Fact]
    public async Task RunAsync_CheckThrows_BecomesFailureAndOthersRun()
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        DoctorReport report = await DoctorReport.RunAsync(m.Context(), [new ThrowingCheck(), new OsReleaseCheck()]);

        Assert.Equal(CheckStatus.Fail, report["test.throws"]!.Status);
        Assert.Contains("boom", report["test.throws"]!.Finding);
        Assert.Equal(CheckStatus.Ok, report["os.release"]!.Status);
    }

    private sealed class ThrowingCheck : IDoctorCheck
    {
        public string Id => "test.throws";

        public string Title => "Throws";

        public Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken) => throw new InvalidOperationException("boom");
    }
}
