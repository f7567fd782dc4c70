using System.Security.Cryptography;
using System.Text;
using Halo.Installer.Doctor;
using Halo.Testing;

namespace Halo.Installer.Tests.Doctor;

/// <summary>
/// A whole machine in a temporary directory for `--root`: files, ELF stand-ins, scripts, symlinks, units.
/// <see cref="StrixHalo"/> builds a healthy provisioned appliance; tests then break one thing at a time.
/// </summary>
internal sealed class FakeMachine : IDisposable
{
    public const string ModelName = "tiny-test";
    private static readonly byte[] ElfHeader = [0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0];

    private readonly TempDir _dir = new();

    public string Root => _dir.Path;

    public SystemRoot SystemRoot => new(Root);

    public string HostPath(string path) => Path.Combine(Root, path.TrimStart('/'));

    public FakeMachine File(string path, string content, UnixFileMode? mode = null)
    {
        string host = HostPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(host)!);
        System.IO.File.WriteAllText(host, content);
        if (mode is not null)
        {
            Halo.Installer.Doctor.SystemRoot.SetModeOfHostPath(host, mode.Value);
        }

        return this;
    }

    public FakeMachine Remove(string path)
    {
        string host = HostPath(path);
        if (Directory.Exists(host))
        {
            Directory.Delete(host, recursive: true);
        }
        else if (System.IO.File.Exists(host) || new FileInfo(host).LinkTarget is not null)
        {
            System.IO.File.Delete(host);
        }

        return this;
    }

    /// <summary>An executable that starts with the ELF magic (compiled code, as far as the kernel's first bytes go).</summary>
    public FakeMachine Elf(string path)
    {
        string host = HostPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(host)!);
        System.IO.File.WriteAllBytes(host, ElfHeader);
        Halo.Installer.Doctor.SystemRoot.SetModeOfHostPath(host, (UnixFileMode)0b111_101_101);
        return this;
    }

    public FakeMachine Script(string path, string text) => File(path, text, (UnixFileMode)0b111_101_101);

    public FakeMachine Symlink(string path, string target)
    {
        string host = HostPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(host)!);
        if (new FileInfo(host).LinkTarget is not null || System.IO.File.Exists(host))
        {
            System.IO.File.Delete(host);
        }

        System.IO.File.CreateSymbolicLink(host, target);
        return this;
    }

    public FakeMachine Unit(string name, string body, string dir = "/etc/systemd/system") => File($"{dir}/{name}", body);

    public FakeMachine Service(string name, string serviceSection, string dir = "/etc/systemd/system") =>
        Unit(name, $"[Unit]\nDescription={name}\n\n[Service]\n{serviceSection}\n\n[Install]\nWantedBy=multi-user.target\n", dir);

    /// <summary>The interpreters and wrappers a typical distribution ships, as ELF stand-ins in /usr/bin.</summary>
    public FakeMachine StandardBinaries()
    {
        foreach (string name in (string[])["python3.12", "perl", "ruby3.2", "node", "php8.3", "lua5.4", "bash", "dash",
                     "env", "nice", "ionice", "taskset", "chrt", "numactl", "stdbuf", "timeout", "setpriv", "runuser", "sudo", "grep", "true", "test", "echo"])
        {
            Elf("/usr/bin/" + name);
        }

        Symlink("/usr/bin/python3", "python3.12");
        Symlink("/bin", "usr/bin");
        Symlink("/usr/bin/sh", "dash");
        Symlink("/etc/alternatives/java", "/usr/lib/jvm/java-21/bin/java");
        Elf("/usr/lib/jvm/java-21/bin/java");
        Symlink("/usr/bin/java", "/etc/alternatives/java");
        return this;
    }

    /// <summary>A healthy, provisioned Strix Halo appliance (128 GiB, Ubuntu 24.04, Linux 6.18.4, ROCm 7.2).</summary>
    public static FakeMachine StrixHalo()
    {
        var m = new FakeMachine();
        long memKib = 128L * 1024 * 1024 - 512 * 1024;
        long pages = Halo.Installer.Doctor.Checks.TtmLimitCheck.RecommendedPages(memKib * 1024);
        m.File("/etc/os-release", "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\nVERSION_CODENAME=noble\nPRETTY_NAME=\"Ubuntu 24.04.3 LTS\"\n")
            .File("/proc/sys/kernel/osrelease", "6.18.4-061804-generic\n")
            .File("/proc/version", "Linux version 6.18.4-061804-generic (gcc) #1 SMP\n")
            .File("/proc/meminfo", $"MemTotal:       {memKib} kB\nMemFree:        100000000 kB\n")
            .File("/proc/cmdline", $"BOOT_IMAGE=/vmlinuz root=UUID=x ro quiet ttm.pages_limit={pages}\n")
            .File("/sys/module/ttm/parameters/pages_limit", $"{pages}\n")
            .File("/sys/class/kfd/kfd/topology/nodes/0/properties", "cpu_cores_count 32\nsimd_count 0\ngfx_target_version 0\nvendor_id 0\n")
            .File("/sys/class/kfd/kfd/topology/nodes/1/properties", "cpu_cores_count 0\nsimd_count 80\ngfx_target_version 110501\nvendor_id 4098\ndevice_id 5510\n")
            .File("/dev/kfd", "")
            .File("/sys/class/drm/card1/device/vendor", "0x1002\n")
            .File("/sys/class/drm/card1/device/device", "0x1586\n")
            .File("/sys/class/drm/card1-DP-1/status", "disconnected\n")
            .File("/opt/rocm-7.2.0/.info/version", "7.2.0-70200\n")
            .Symlink("/opt/rocm", "/opt/rocm-7.2.0")
            .File("/etc/OpenCL/vendors/amdocl64_70200.icd", "libamdocl64.so\n")
            .File("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nhalo:x:998:998:Halo appliance:/var/lib/halo:/usr/sbin/nologin\n")
            .File("/etc/group", "root:x:0:\nvideo:x:44:halo\nrender:x:992:halo\nhalo:x:998:\n")
            .File("/var/lib/dpkg/status", "Package: linux-firmware\nStatus: install ok installed\nVersion: 20251111.git1-0ubuntu1\n\nPackage: rocm-core\nStatus: install ok installed\nVersion: 7.2.0.70200-1\n")
            .File("/usr/lib/firmware/amdgpu/gc_11_5_1_mes_2.bin.zst", "fw")
            .File("/etc/halo/halo.yaml", "server:\n  listen:\n    - 127.0.0.1:8180\nmodel:\n  models_dir: /var/lib/halo/models\n", (UnixFileMode)0b110_100_000)
            .Service("halo-server.service", "Type=notify\nUser=halo\nExecStart=/usr/local/bin/halo-server --config /etc/halo/halo.yaml\nWatchdogSec=30s\nRestart=on-failure")
            .Elf("/usr/local/bin/halo-server")
            .StandardBinaries();
        m.Model(ModelName, "weights"u8.ToArray());
        SetMode(m.HostPath("/etc/halo"), 0b111_101_101);
        SetMode(m.HostPath("/var/lib/halo"), 0b111_101_000);
        return m;
    }

    /// <summary>A model directory with its manifest.json (the shape `halo models pull` writes).</summary>
    public FakeMachine Model(string name, byte[] content)
    {
        string dir = $"/var/lib/halo/models/{name}";
        string host = HostPath(dir + "/model.gguf");
        Directory.CreateDirectory(Path.GetDirectoryName(host)!);
        System.IO.File.WriteAllBytes(host, content);
        string sha = System.Convert.ToHexStringLower(SHA256.HashData(content));
        return File(dir + "/manifest.json",
            $$"""{"schema": 1, "name": "{{name}}", "source": "synth", "format": "gguf", "main": "model.gguf", "pulled_at": "2026-11-25T14:00:00Z", "files": [{"path": "model.gguf", "size": {{content.Length}}, "sha256": "{{sha}}", "sha256_source": "computed"}]}""");
    }

    public DoctorContext Context(DoctorSettings? settings = null) => new(SystemRoot, settings);

    public async Task<DoctorReport> DoctorAsync() => await DoctorReport.RunAsync(Context());

    public async Task<CheckResult> CheckAsync(IDoctorCheck check) => await check.RunAsync(Context(), CancellationToken.None);

    public static void SetMode(string hostPath, int mode) => Halo.Installer.Doctor.SystemRoot.SetModeOfHostPath(hostPath, (UnixFileMode)mode);

    public void Dispose() => _dir.Dispose();

    public override string ToString() => Root;
}
