using Halo.Installer.Doctor;
using Halo.Installer.Provision;
using Halo.Installer.Provision.Steps;
using Halo.Installer.Tests.Doctor;

namespace Halo.Installer.Tests.Provision;

/// <summary>Plan and apply into fake roots: per-distro plans, a real apply checked by the doctor, idempotence.</summary>
public class ProvisionerTests
{
    private static readonly string[] Distros =
    [
        "ubuntu|ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\nVERSION_CODENAME=noble\nPRETTY_NAME=\"Ubuntu 24.04.3 LTS\"\n",
        "debian|ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        "fedora|NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=43\nPRETTY_NAME=\"Fedora Linux 43 (Workstation Edition)\"\n",
        "arch|NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\nPRETTY_NAME=\"Arch Linux\"\n",
        "cachyos|NAME=\"CachyOS Linux\"\nID=cachyos\nID_LIKE=arch\nPRETTY_NAME=\"CachyOS\"\n",
    ];

    /// <summary>A Strix Halo box fresh from the distro installer: no ROCm, no halo user, no Halo files, default TTM.</summary>
    private static FakeMachine FreshStrixHalo(string osRelease)
    {
        FakeMachine m = FakeMachine.StrixHalo();
        m.Remove("/opt/rocm").Remove("/opt/rocm-7.2.0").Remove("/etc/OpenCL").Remove("/etc/halo").Remove("/var/lib/halo")
            .Remove("/etc/systemd/system/halo-server.service").Remove("/sys/module/ttm")
            .File("/var/lib/dpkg/status", "Package: linux-firmware\nStatus: install ok installed\nVersion: 20251111-0ubuntu1\n")
            .File("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=UUID=x ro quiet\n")
            .File("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nsystemd-network:x:998:998::/:/usr/sbin/nologin\n")
            .File("/etc/group", "root:x:0:\nvideo:x:44:\nsystemd-network:x:998:\n")
            .File("/etc/shadow", "root:*:19000:0:99999:7:::\n", (UnixFileMode)0b110_000_000)
            .File("/etc/default/grub", "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash amdgpu.gttsize=65536\"\nGRUB_CMDLINE_LINUX=\"\"\n")
            .File("/etc/os-release", osRelease);
        return m;
    }

    private static (Provisioner Provisioner, ProvisionContext Context, StringWriter Output) Create(FakeMachine m, bool kernelArgs = false)
    {
        var output = new StringWriter();
        var context = new ProvisionContext(m.SystemRoot, new ProvisionOptions(DryRun: false, Yes: true, KernelArgs: kernelArgs, Interactive: false)) { Out = output };
        return (new Provisioner(context), context, output);
    }

    private static async Task<string> ApplyAsync(FakeMachine m, bool consent)
    {
        (Provisioner provisioner, _, StringWriter output) = Create(m, consent);
        IReadOnlyList<ProvisionStep> plan = await provisioner.PlanAsync(CancellationToken.None);
        provisioner.Print(plan);
        await provisioner.ApplyAsync(plan, _ => consent, CancellationToken.None);
        return output.ToString();
    }

    /// <summary>Every file, directory and link under the root with its content, mode and target.</summary>
    private static SortedDictionary<string, string> Snapshot(FakeMachine m)
    {
        var snapshot = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (string path in Directory.EnumerateFileSystemEntries(m.Root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var info = new FileInfo(path);
            string rel = path[m.Root.Length..];
            snapshot[rel] = info.LinkTarget is { } target ? "-> " + target
                : Directory.Exists(path) ? "dir " + System.Convert.ToString((int)SystemRoot.ModeOfHostPath(path), 8)
                : System.Convert.ToString((int)SystemRoot.ModeOfHostPath(path), 8) + " " + File.ReadAllText(path);
        }

        return snapshot;
    }

    [Theory]
    [InlineData(0, "apt-get install -y --no-install-recommends rocm-opencl-runtime rocminfo", "https://repo.radeon.com/rocm/apt/7.2 noble main")]
    [InlineData(1, "apt-get install -y --no-install-recommends rocm-opencl-runtime rocminfo", "https://repo.radeon.com/rocm/apt/7.2 jammy main")]
    [InlineData(2, "dnf install -y rocm-opencl rocminfo", null)]
    [InlineData(3, "pacman -S --needed --noconfirm rocm-opencl-runtime rocminfo", null)]
    [InlineData(4, "pacman -S --needed --noconfirm rocm-opencl-runtime rocminfo", null)]
    public async Task PlanAsync_EachDistro_RightPackagesAndNothingWritten(int distro, string install, string? aptRepository)
    {
        using FakeMachine m = FreshStrixHalo(Distros[distro].Split('|')[1]);
        SortedDictionary<string, string> before = Snapshot(m);
        (Provisioner provisioner, _, StringWriter output) = Create(m);

        IReadOnlyList<ProvisionStep> plan = await provisioner.PlanAsync(CancellationToken.None);
        provisioner.Print(plan);
        string text = output.ToString();

        Assert.Contains($"run    {install}", text);
        if (aptRepository is null)
        {
            Assert.DoesNotContain("repo.radeon.com", text);
        }
        else
        {
            Assert.Contains(aptRepository, text);
            Assert.Contains("/etc/apt/keyrings/rocm.asc", text);
        }

        foreach (string expected in (string[])["halo system user", "/etc/halo mode 0755", "/var/lib/halo mode 0750", "/etc/halo/halo.yaml",
                     "/etc/systemd/system/halo-server.service", "sockets.target.wants/halo-server.socket", "timers.target.wants/halo-doctor.timer",
                     "ttm.pages_limit=", "halo models pull bitnet-b1.58-2b-4t-gguf"])
        {
            Assert.Contains(expected, text);
        }

        Assert.Equal(before, Snapshot(m));
    }

    [Fact]
    public async Task ApplyAsync_FreshRoot_DoctorFindsAProvisionedAppliance()
    {
        using FakeMachine m = FreshStrixHalo(Distros[0].Split('|')[1]);
        string output = await ApplyAsync(m, consent: false);

        DoctorReport report = await DoctorReport.RunAsync(new DoctorContext(m.SystemRoot));
        foreach (string id in (string[])["user.halo", "service.watchdog", "config.file", "permissions", "units.forbidden-runtime"])
        {
            Assert.True(report[id]!.Status == CheckStatus.Ok, $"{id}: {report[id]!.Finding}\n{output}");
        }

        // What provision cannot do under --root stays visible: no packages, no model, TTM not consented.
        Assert.Equal(CheckStatus.Fail, report["rocm.version"]!.Status);
        Assert.Equal(CheckStatus.Fail, report["models.present"]!.Status);
        Assert.Equal(CheckStatus.Warn, report["memory.ttm"]!.Status);
        Assert.Contains("skip   apt-get install", output);
        Assert.Contains("no consent", output);

        string passwd = File.ReadAllText(m.HostPath("/etc/passwd"));
        Assert.Contains("halo:x:997:997:Halo appliance:/var/lib/halo:/usr/sbin/nologin\n", passwd);
        Assert.StartsWith("root:x:0:0:root:/root:/bin/bash\nsystemd-network:", passwd);
        Assert.Contains("\nvideo:x:44:halo\n", File.ReadAllText(m.HostPath("/etc/group")));
        Assert.Matches(@"\nhalo:!\*:\d+::::::\n", File.ReadAllText(m.HostPath("/etc/shadow")));
        Assert.Equal("/etc/systemd/system/halo-server.service", new FileInfo(m.HostPath("/etc/systemd/system/multi-user.target.wants/halo-server.service")).LinkTarget);
        Assert.Contains("deb [arch=amd64 signed-by=/etc/apt/keyrings/rocm.asc] https://repo.radeon.com/rocm/apt/7.2 noble main", File.ReadAllText(m.HostPath("/etc/apt/sources.list.d/rocm.list")));
        Assert.Contains("amdgpu.gttsize=65536", File.ReadAllText(m.HostPath("/etc/default/grub")));
    }

    [Fact]
    public async Task ApplyAsync_Twice_SecondChangesNothing()
    {
        using FakeMachine m = FreshStrixHalo(Distros[3].Split('|')[1]);
        await ApplyAsync(m, consent: true);
        SortedDictionary<string, string> after = Snapshot(m);

        (Provisioner provisioner, _, _) = Create(m, kernelArgs: true);
        IReadOnlyList<ProvisionStep> plan = await provisioner.PlanAsync(CancellationToken.None);
        Assert.Equal(0, provisioner.ChangeCount(plan));
        await ApplyAsync(m, consent: true);

        Assert.Equal(after, Snapshot(m));
    }

    [Fact]
    public async Task ApplyAsync_KernelArgsConsented_GrubEditedOnce()
    {
        using FakeMachine m = FreshStrixHalo(Distros[0].Split('|')[1]);
        await ApplyAsync(m, consent: true);

        string grub = File.ReadAllText(m.HostPath("/etc/default/grub"));
        long pages = Halo.Installer.Doctor.Checks.TtmLimitCheck.RecommendedPages(m.Context().Machine.MemoryBytes);
        Assert.Contains($"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash ttm.pages_limit={pages}\"\n", grub);
        Assert.Contains("GRUB_CMDLINE_LINUX=\"\"\n", grub);

        (Provisioner provisioner, _, StringWriter output) = Create(m, kernelArgs: true);
        provisioner.Print(await provisioner.PlanAsync(CancellationToken.None));
        Assert.Contains("configured for the next boot: reboot", output.ToString());
    }

    [Fact]
    public async Task PlanAsync_AdequateTtmLimitOfOperatorsChoice_Kept()
    {
        using FakeMachine m = FreshStrixHalo(Distros[0].Split('|')[1]);
        long memory = m.Context().Machine.MemoryBytes;
        m.File("/proc/cmdline", $"ro quiet ttm.pages_limit={memory / 4096 * 9 / 10}\n");
        (Provisioner provisioner, _, StringWriter output) = Create(m, kernelArgs: true);
        IReadOnlyList<ProvisionStep> plan = await provisioner.PlanAsync(CancellationToken.None);

        Assert.Empty(plan.Single(s => s.Id == "kernel").Actions);
        provisioner.Print(plan);
        Assert.Contains("is on the running kernel's command line", output.ToString());
    }

    [Fact]
    public async Task PlanAsync_FedoraWithGrubby_UsesGrubby()
    {
        using FakeMachine m = FreshStrixHalo(Distros[2].Split('|')[1]);
        m.Elf("/usr/sbin/grubby");
        (Provisioner provisioner, _, StringWriter output) = Create(m, kernelArgs: true);
        provisioner.Print(await provisioner.PlanAsync(CancellationToken.None));

        Assert.Matches(@"run    grubby --update-kernel=ALL --args=ttm\.pages_limit=\d+ --remove-args=amdgpu\.gttsize", output.ToString());
        Assert.DoesNotContain("/etc/default/grub:", output.ToString());
    }

    [Fact]
    public async Task ApplyAsync_SystemdBootKernelCmdline_EditedWithRebuildNote()
    {
        using FakeMachine m = FreshStrixHalo(Distros[3].Split('|')[1]);
        m.Remove("/etc/default/grub").File("/etc/kernel/cmdline", "root=UUID=x rw amdgpu.gttsize=1024\n");
        string output = await ApplyAsync(m, consent: true);

        Assert.Matches(@"^root=UUID=x rw ttm\.pages_limit=\d+\n$", File.ReadAllText(m.HostPath("/etc/kernel/cmdline")));
        Assert.Contains("rebuild the boot image", output);
    }

    [Fact]
    public async Task PlanAsync_NoBootLoaderConfig_SaysWhatToAddByHand()
    {
        using FakeMachine m = FreshStrixHalo(Distros[3].Split('|')[1]);
        m.Remove("/etc/default/grub");
        (Provisioner provisioner, _, StringWriter output) = Create(m, kernelArgs: true);
        IReadOnlyList<ProvisionStep> plan = await provisioner.PlanAsync(CancellationToken.None);
        provisioner.Print(plan);

        Assert.Empty(plan.Single(s => s.Id == "kernel").Actions);
        Assert.Contains("by hand", output.ToString());
    }

    [Fact]
    public async Task ApplyAsync_ExistingUnitAndConfig_LeftAlone()
    {
        using FakeMachine m = FreshStrixHalo(Distros[0].Split('|')[1]);
        const string localUnit = "[Service]\nType=notify\nExecStart=/opt/halo/lib/halo/halo-server\nWatchdogSec=10s\n[Install]\nWantedBy=multi-user.target\n";
        m.Unit("halo-server.service", localUnit).File("/etc/halo/halo.yaml", "server:\n  listen: [\"0.0.0.0:9000\"]\n");

        await ApplyAsync(m, consent: false);

        Assert.Equal(localUnit, File.ReadAllText(m.HostPath("/etc/systemd/system/halo-server.service")));
        Assert.Equal("server:\n  listen: [\"0.0.0.0:9000\"]\n", File.ReadAllText(m.HostPath("/etc/halo/halo.yaml")));
        Assert.True(File.Exists(m.HostPath("/etc/systemd/system/halo-server.socket")));
    }

    [Fact]
    public async Task PlanAsync_UnknownDistroAndNoGpu_PackagesSkippedWithReason()
    {
        using FakeMachine m = FreshStrixHalo("ID=gentoo\nPRETTY_NAME=\"Gentoo Linux\"\n");
        (Provisioner provisioner, _, StringWriter output) = Create(m);
        provisioner.Print(await provisioner.PlanAsync(CancellationToken.None));
        Assert.Contains("Gentoo Linux is not Ubuntu/Debian, Fedora or Arch", output.ToString());

        m.File("/etc/os-release", Distros[0].Split('|')[1]).Remove("/sys/class/kfd").Remove("/sys/class/drm");
        (provisioner, _, output) = Create(m);
        provisioner.Print(await provisioner.PlanAsync(CancellationToken.None));
        Assert.Contains("no AMD GPU here", output.ToString());
        Assert.Contains("no Strix Halo GPU", output.ToString());
    }

    [Fact]
    public async Task PlanAsync_PackagesInstalled_StepDone()
    {
        using FakeMachine m = FreshStrixHalo(Distros[0].Split('|')[1]);
        m.File("/var/lib/dpkg/status", "Package: rocm-opencl-runtime\nStatus: install ok installed\nVersion: 7.2.0\n\nPackage: rocminfo\nStatus: install ok installed\nVersion: 1.0.0.70200\n");
        (Provisioner provisioner, _, StringWriter output) = Create(m);
        provisioner.Print(await provisioner.PlanAsync(CancellationToken.None));
        Assert.Contains("ok     rocm-opencl-runtime, rocminfo installed", output.ToString());
    }

    [Fact]
    public void EnableLinks_ServiceWithAlso_IncludesSocket()
    {
        var links = UnitsStep.EnableLinks("halo-server.service", EmbeddedUnits.Instance.Units).ToList();
        Assert.Contains(("/etc/systemd/system/multi-user.target.wants/halo-server.service", "/etc/systemd/system/halo-server.service"), links);
        Assert.Contains(("/etc/systemd/system/sockets.target.wants/halo-server.socket", "/etc/systemd/system/halo-server.socket"), links);
    }

    [Fact]
    public void EmbeddedUnits_EqualRepositorySystemdFolder()
    {
        string dir = Path.Combine(Halo.Testing.TestPaths.RepoRoot, "systemd");
        var files = Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllText);
        Assert.Equal(files.OrderBy(kv => kv.Key), EmbeddedUnits.Instance.Units.OrderBy(kv => kv.Key));
    }

    [Theory]
    [InlineData("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet ttm.pages_limit=5\"\n")]
    [InlineData("GRUB_CMDLINE_LINUX_DEFAULT=\"ttm.pages_limit=1 quiet\"\n", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet ttm.pages_limit=5\"\n")]
    [InlineData("GRUB_DEFAULT=0\n", "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"ttm.pages_limit=5\"\n")]
    public void EditGrub_SetsArgumentOnce(string before, string after) =>
        Assert.Equal(after, KernelArgsStep.EditGrub(before, "ttm.pages_limit=5"));
}
