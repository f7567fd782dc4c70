using System.Runtime.Versioning;
using System.Security.Cryptography;
using Halo.Testing;
using Xunit.Abstractions;

namespace Halo.Installer.Tests.Packaging;

/// <summary>
/// install-strixhalo.sh run for real into temporary roots (--root), never touching this machine: shellcheck,
/// the checks it makes (architecture, root), --dry-run, --prefix, idempotence, local config kept, and the
/// installed CLI actually running from where the units say it is.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class InstallerScriptTests(ITestOutputHelper output)
{
    private static string Script => Path.Combine(TestPaths.RepoRoot, "install-strixhalo.sh");

    [Fact]
    public void Shellcheck_InstallerScript_Clean()
    {
        string shellcheck = ProcessRunner.Require("shellcheck", "shellcheck");

        ProcessResult result = ProcessRunner.Run(shellcheck, ["--shell=bash", "--severity=style", Script]);

        Assert.True(result.ExitCode == 0, "shellcheck findings:\n" + result.Output);
    }

    [Fact]
    public void Install_PublishedAppsIntoTempRoot_LaysOutApplianceAndRuns()
    {
        using var dir = new TempDir();
        string root = dir.File("root");

        ProcessResult install = Install(["--root", root, "--from", PublishedApps.Path, "--no-provision"]);

        output.WriteLine(install.Output);
        Assert.True(install.ExitCode == 0, install.Output);
        string lib = Path.Combine(root, "usr", "lib", "halo");
        Assert.True(File.Exists(Path.Combine(lib, "halo")) && File.Exists(Path.Combine(lib, "halo-server")));
        Assert.Equal("/usr/lib/halo/halo", new FileInfo(Path.Combine(root, "usr", "bin", "halo")).LinkTarget);
        foreach (string unit in new[] { "halo-server.service", "halo-server.socket", "halo-doctor.service", "halo-doctor.timer" })
        {
            Assert.Equal(
                File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "systemd", unit)),
                File.ReadAllText(Path.Combine(root, "etc", "systemd", "system", unit)));
        }

        Assert.True(File.Exists(Path.Combine(root, "usr", "share", "halo", "prometheus", "halo-alerts.yml")));
        Assert.True(File.Exists(Path.Combine(root, "usr", "share", "halo", "grafana", "halo-dashboard.json")));
        ProcessResult help = ProcessRunner.Run(Path.Combine(lib, "halo"), ["--help"]);
        Assert.True(help.ExitCode == 0, help.Output);
        Assert.Contains("provision", help.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void Install_WithRealProvisionIntoDebianRoot_ApplianceReadyAndSecondRunChangesNothing()
    {
        using var dir = new TempDir();
        string root = dir.File("root");
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc", "os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");

        ProcessResult first = Install(["--root", root, "--from", PublishedApps.Path, "--yes"]);

        output.WriteLine(first.Output);
        Assert.True(first.ExitCode == 0, first.Output);
        Assert.Contains("halo provision: Debian GNU/Linux 12", first.StdOut, StringComparison.Ordinal);
        Assert.Contains("\nhalo:", "\n" + File.ReadAllText(Path.Combine(root, "etc", "passwd")), StringComparison.Ordinal);
        string units = Path.Combine(root, "etc", "systemd", "system");
        Assert.Equal("/etc/systemd/system/halo-server.service",
            new FileInfo(Path.Combine(units, "multi-user.target.wants", "halo-server.service")).LinkTarget);
        Assert.True(new FileInfo(Path.Combine(units, "sockets.target.wants", "halo-server.socket")).LinkTarget is not null);
        Assert.True(new FileInfo(Path.Combine(units, "timers.target.wants", "halo-doctor.timer")).LinkTarget is not null);
        Assert.Equal(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "systemd", "halo-server.service")),
            File.ReadAllText(Path.Combine(units, "halo-server.service")));
        Assert.Matches(@"\[✓\] No interpreter in systemd units", first.StdOut);
        Dictionary<string, string> before = Snapshot(root);

        ProcessResult second = Install(["--root", root, "--from", PublishedApps.Path, "--yes"]);

        Assert.True(second.ExitCode == 0, second.Output);
        Assert.Equal(before, Snapshot(root));
    }

    [Fact]
    public void Install_Prefix_WrittenIntoUnitsAndUnitsVerify()
    {
        using var dir = new TempDir();
        string root = dir.File("root");

        ProcessResult install = Install(["--root", root, "--prefix", "/opt/halo", "--from", StubPayload(dir), "--no-provision"]);

        Assert.True(install.ExitCode == 0, install.Output);
        string units = Path.Combine(root, "etc", "systemd", "system");
        Assert.Equal("/opt/halo/lib/halo/halo-server",
            UnitFile.Load(Path.Combine(units, "halo-server.service")).Single("Service", "ExecStart"));
        Assert.StartsWith("/opt/halo/lib/halo/halo doctor",
            UnitFile.Load(Path.Combine(units, "halo-doctor.service")).Single("Service", "ExecStart"), StringComparison.Ordinal);
        Assert.Equal("file:///opt/halo/share/doc/halo/README.md",
            UnitFile.Load(Path.Combine(units, "halo-server.service")).Single("Unit", "Documentation"));
        Assert.True(File.Exists(Path.Combine(root, "opt", "halo", "share", "doc", "halo", "README.md")));
        Assert.True(File.Exists(Path.Combine(root, "opt", "halo", "lib", "halo", "halo-server")));

        // systemd-analyze checks that ExecStart= names an executable: point the installed units into the root.
        string staged = dir.File("staged");
        Directory.CreateDirectory(staged);
        var files = new List<string>();
        foreach (string unit in Directory.GetFiles(units))
        {
            string target = Path.Combine(staged, Path.GetFileName(unit));
            File.WriteAllText(target, File.ReadAllText(unit).Replace("/opt/halo/", root + "/opt/halo/", StringComparison.Ordinal));
            files.Add(target);
        }

        ProcessResult verify = ProcessRunner.Run(ProcessRunner.Require("systemd-analyze", "systemd"), ["verify", "--man=no", .. files]);
        Assert.True(verify.ExitCode == 0 && verify.Output.Trim().Length == 0, verify.Output);
    }

    [Fact]
    public void Install_SecondRun_ChangesNothing()
    {
        using var dir = new TempDir();
        string root = dir.File("root");
        string payload = StubPayload(dir);
        Assert.Equal(0, Install(["--root", root, "--from", payload, "--no-provision"]).ExitCode);
        Dictionary<string, string> before = Snapshot(root);

        ProcessResult second = Install(["--root", root, "--from", payload, "--no-provision"]);

        Assert.True(second.ExitCode == 0, second.Output);
        Assert.Equal(before, Snapshot(root));
        Assert.DoesNotContain("    install ", second.StdOut, StringComparison.Ordinal);
        Assert.Contains("unchanged", second.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void Install_LocalConfigEdited_KeptAndDefaultWrittenBeside()
    {
        using var dir = new TempDir();
        string root = dir.File("root");
        string source = SourceTree(dir, "listen: 127.0.0.1:8180\n");
        Assert.Equal(0, Install(["--root", root, "--source", source, "--from", StubPayload(dir), "--no-provision"]).ExitCode);
        string config = Path.Combine(root, "etc", "halo", "halo.yaml");
        Assert.Equal("listen: 127.0.0.1:8180\n", File.ReadAllText(config));
        File.WriteAllText(config, "listen: 0.0.0.0:8180\n");

        ProcessResult again = Install(["--root", root, "--source", source, "--from", StubPayload(dir), "--no-provision"]);

        Assert.True(again.ExitCode == 0, again.Output);
        Assert.Equal("listen: 0.0.0.0:8180\n", File.ReadAllText(config));
        Assert.Equal("listen: 127.0.0.1:8180\n", File.ReadAllText(config + ".dist"));
        Assert.Contains("kept local", again.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void Install_Provision_RunWithRootAndYes()
    {
        using var dir = new TempDir();
        string root = dir.File("root");
        string log = dir.File("calls.log");

        ProcessResult install = Install(["--root", root, "--from", StubPayload(dir), "--yes"],
            new Dictionary<string, string> { ["HALO_STUB_LOG"] = log });

        Assert.True(install.ExitCode == 0, install.Output);
        Assert.Equal($"halo provision --root {root} --yes\n", File.ReadAllText(log));
    }

    [Fact]
    public void Install_ProvisionFails_ScriptFailsWithMessage()
    {
        using var dir = new TempDir();
        string payload = StubPayload(dir, provisionExit: 2);

        ProcessResult install = Install(["--root", dir.File("root"), "--from", payload]);

        Assert.Equal(1, install.ExitCode);
        Assert.Contains("halo provision failed", install.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public void DryRun_TempRoot_ChangesNothingAndProvisionDryRuns()
    {
        using var dir = new TempDir();
        string root = dir.File("root");
        Directory.CreateDirectory(root);
        string log = dir.File("calls.log");

        ProcessResult dryRun = Install(["--dry-run", "--root", root, "--from", StubPayload(dir)],
            new Dictionary<string, string> { ["HALO_STUB_LOG"] = log });

        Assert.True(dryRun.ExitCode == 0, dryRun.Output);
        Assert.Empty(Directory.GetFileSystemEntries(root));
        Assert.Contains("[dry-run]", dryRun.StdOut, StringComparison.Ordinal);
        Assert.Contains("halo-server.service", dryRun.StdOut, StringComparison.Ordinal);
        Assert.Equal($"halo provision --root {root} --dry-run\n", File.ReadAllText(log));
    }

    [Fact]
    public void DryRun_RootMissing_NothingCreatedAndProvisionOnlyPrinted()
    {
        using var dir = new TempDir();
        string root = dir.File("root");
        string log = dir.File("calls.log");

        ProcessResult dryRun = Install(["--dry-run", "--root", root, "--from", StubPayload(dir)],
            new Dictionary<string, string> { ["HALO_STUB_LOG"] = log });

        Assert.True(dryRun.ExitCode == 0, dryRun.Output);
        Assert.False(Directory.Exists(root), "--dry-run created the root");
        Assert.False(File.Exists(log), "provision ran against a root that does not exist");
        Assert.Contains($"[dry-run] /usr/lib/halo/halo provision --root {root} --dry-run", dryRun.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void ArchitectureCheck_Arm64_Refused()
    {
        using var dir = new TempDir();
        string fakeBin = FakeTools(dir, uname: "case \"$1\" in -m) echo aarch64 ;; *) echo Linux ;; esac");

        ProcessResult result = Install(["--root", dir.File("root"), "--from", StubPayload(dir)],
            new Dictionary<string, string> { ["PATH"] = fakeBin + ":" + Environment.GetEnvironmentVariable("PATH") });

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("unsupported architecture aarch64", result.StdErr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir.File("root")));
    }

    [Fact]
    public void RootCheck_NotRootAndNoRootDir_Refused()
    {
        using var dir = new TempDir();
        string fakeBin = FakeTools(dir, id: "[ \"$1\" = -u ] && echo 1000 || /usr/bin/id \"$@\"");

        ProcessResult result = Install(["--from", StubPayload(dir)],
            new Dictionary<string, string> { ["PATH"] = fakeBin + ":" + Environment.GetEnvironmentVariable("PATH") });

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("run as root", result.StdErr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--prefix", "usr/local", "absolute path")]
    [InlineData("--from", "/nonexistent/halo-release", "is not a directory")]
    [InlineData("--frobnicate", "", "unknown option")]
    public void Options_Invalid_OneClearError(string option, string value, string message)
    {
        ProcessResult result = Install(value.Length == 0 ? [option] : [option, value]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(message, result.StdErr, StringComparison.Ordinal);
    }

    private static ProcessResult Install(string[] arguments, IReadOnlyDictionary<string, string>? environment = null) =>
        ProcessRunner.Run("/bin/bash", [Script, .. arguments], TimeSpan.FromMinutes(3), environment: environment);

    /// <summary>
    /// A --from directory with `halo` and `halo-server` that record how they were called ($HALO_STUB_LOG),
    /// for the tests about the script's own behaviour; the real apps are installed in the test above.
    /// </summary>
    private static string StubPayload(TempDir dir, int provisionExit = 0)
    {
        string payload = dir.File($"payload-{provisionExit}");
        Directory.CreateDirectory(payload);
        foreach (string exe in new[] { "halo", "halo-server" })
        {
            string path = Path.Combine(payload, exe);
            File.WriteAllText(path,
                $"#!/bin/sh\n[ -z \"$HALO_STUB_LOG\" ] || echo \"{exe} $*\" >> \"$HALO_STUB_LOG\"\nexit {provisionExit}\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        File.WriteAllText(Path.Combine(payload, "halo.dll"), "payload assembly");
        return payload;
    }

    /// <summary>A minimal source tree (units, config, monitoring files, README) with the given halo.yaml default.</summary>
    private static string SourceTree(TempDir dir, string haloYaml)
    {
        string source = dir.File("source");
        CopyDir(Path.Combine(TestPaths.RepoRoot, "systemd"), Path.Combine(source, "systemd"));
        CopyDir(Path.Combine(TestPaths.RepoRoot, "config"), Path.Combine(source, "config"));
        File.WriteAllText(Path.Combine(source, "config", "halo.yaml"), haloYaml);
        File.Copy(Path.Combine(TestPaths.RepoRoot, "README.md"), Path.Combine(source, "README.md"));
        return source;
    }

    private static void CopyDir(string from, string to)
    {
        foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    private static string FakeTools(TempDir dir, string? uname = null, string? id = null)
    {
        string bin = dir.File("fakebin");
        Directory.CreateDirectory(bin);
        foreach ((string name, string? body) in new[] { ("uname", uname), ("id", id) })
        {
            if (body is null)
            {
                continue;
            }

            string path = Path.Combine(bin, name);
            File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return bin;
    }

    /// <summary>Every file and link under <paramref name="root"/>: content hash, mode and modification time.</summary>
    private static Dictionary<string, string> Snapshot(string root)
    {
        var snapshot = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string path in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            var info = new FileInfo(path);
            string content = info.LinkTarget is { } link ? "link:" + link
                : Directory.Exists(path) ? "dir"
                : System.Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
            snapshot[Path.GetRelativePath(root, path)] = $"{content} {info.UnixFileMode} {info.LastWriteTimeUtc.Ticks}";
        }

        return snapshot;
    }
}
