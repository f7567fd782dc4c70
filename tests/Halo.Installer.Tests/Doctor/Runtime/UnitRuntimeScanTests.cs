using Halo.Installer.Doctor;
using Halo.Installer.Doctor.Runtime;

namespace Halo.Installer.Tests.Doctor.Runtime;

/// <summary>Every way a unit can reach an interpreter, and clean units that must not be flagged.</summary>
public class UnitRuntimeScanTests
{
    private static FakeMachine Machine()
    {
        var m = new FakeMachine();
        m.StandardBinaries().Elf("/usr/local/bin/halo-server");
        return m;
    }

    private static IReadOnlyList<UnitOffender> Scan(FakeMachine m, params string[] allowed) =>
        new UnitRuntimeScan(m.SystemRoot, RuntimeCatalog.Default, allowed).Run();

    private static void AssertFlagged(FakeMachine m, string runtime, string unit = "app.service")
    {
        IReadOnlyList<UnitOffender> offenders = Scan(m);
        Assert.True(offenders.Any(o => o.Unit == unit && o.Runtime == runtime),
            $"expected {unit} -> {runtime}, got: [{string.Join("; ", offenders.Select(o => $"{o.Unit} {o.Runtime} via {o.Via}"))}]");
    }

    private static void AssertClean(FakeMachine m)
    {
        IReadOnlyList<UnitOffender> offenders = Scan(m);
        Assert.True(offenders.Count == 0, string.Join("; ", offenders.Select(o => $"{o.Unit} {o.Directive} {o.Runtime} via {o.Via}")));
    }

    [Theory]
    [InlineData("ExecStart=/usr/bin/python3 -m http.server", "python3.12")]
    [InlineData("ExecStart=python3 -m http.server", "python3.12")]
    [InlineData("ExecStart=/usr/bin/perl -e 1", "perl")]
    [InlineData("ExecStart=/usr/bin/java -jar /opt/app.jar", "java")]
    [InlineData("ExecStart=-/usr/bin/ruby3.2 app.rb", "ruby3.2")]
    [InlineData("ExecStart=@/usr/bin/node my-daemon server.js", "node")]
    [InlineData("ExecStart=+!!/usr/bin/php8.3 -S 0:80", "php8.3")]
    [InlineData("ExecStart=:/usr/bin/lua5.4 x.lua", "lua5.4")]
    [InlineData("ExecStartPre=/usr/bin/python3 prepare.py\nExecStart=/usr/local/bin/halo-server", "python3.12")]
    [InlineData("ExecStartPost=/usr/bin/python3 x", "python3.12")]
    [InlineData("ExecReload=/usr/bin/python3 x", "python3.12")]
    [InlineData("ExecStop=/usr/bin/python3 x", "python3.12")]
    [InlineData("ExecStopPost=/usr/bin/python3 x", "python3.12")]
    [InlineData("ExecCondition=/usr/bin/python3 x", "python3.12")]
    [InlineData("Type=oneshot\nExecStart=/usr/local/bin/halo-server ; /usr/bin/python3 x", "python3.12")]
    [InlineData("ExecStart=/usr/bin/env python3 app.py", "python3.12")]
    [InlineData("ExecStart=/usr/bin/env -i HOME=/x PATH=/usr/bin node app.js", "node")]
    [InlineData("ExecStart=/usr/bin/env -S \"perl -w\" x.pl", "perl")]
    [InlineData("ExecStart=/bin/sh -c 'exec /usr/bin/python3 -u app.py'", "python3.12")]
    [InlineData("ExecStart=/bin/bash -c \"cd /srv && node server.js\"", "node")]
    [InlineData("ExecStart=/bin/sh -ec 'prepare || true; ruby3.2 app.rb | logger'", "ruby3.2")]
    [InlineData("ExecStart=/bin/dash -c 'FOO=1 php8.3 -S 0:80 >/dev/null 2>&1 &'", "php8.3")]
    [InlineData("ExecStart=/bin/sh -c \"bash -c 'lua5.4 x.lua'\"", "lua5.4")]
    [InlineData("ExecStart=/bin/sh -c 'echo $(python3 -c 1)'", "python3.12")]
    [InlineData("ExecStart=/bin/sh -c 'PY=/usr/bin/python3; $PY app.py'", "python3.12")]
    [InlineData("ExecStart=/bin/sh -c 'if true; then exec node a.js; fi'", "node")]
    [InlineData("ExecStart=/usr/bin/nice -n 5 /usr/bin/python3 x", "python3.12")]
    [InlineData("ExecStart=/usr/bin/ionice -c 3 python3 x", "python3.12")]
    [InlineData("ExecStart=/usr/bin/taskset -c 0-3 node x", "node")]
    [InlineData("ExecStart=/usr/bin/chrt -f 10 perl x", "perl")]
    [InlineData("ExecStart=/usr/bin/numactl --interleave=all -C 0 python3 x", "python3.12")]
    [InlineData("ExecStart=/usr/bin/stdbuf -oL -e L python3 x", "python3.12")]
    [InlineData("ExecStart=/usr/bin/timeout -s KILL 30s python3 x", "python3.12")]
    [InlineData("ExecStart=/usr/bin/setpriv --reuid=halo --regid halo --init-groups python3 x", "python3.12")]
    [InlineData("ExecStart=/usr/bin/runuser -u halo -- node x", "node")]
    [InlineData("ExecStart=/usr/bin/runuser -l halo -c 'python3 x'", "python3.12")]
    [InlineData("ExecStart=/usr/bin/sudo -u halo -E FOO=1 ruby3.2 x", "ruby3.2")]
    [InlineData("ExecStart=/usr/bin/nice -n 1 /usr/bin/env python3 x", "python3.12")]
    [InlineData("ExecStart=|python3 -c 1", "python3.12")]
    [InlineData("ExecStart=/usr/bin/pypy3.10 x", "pypy3.10")]
    [InlineData("ExecStart=/usr/bin/Rscript x.R", "Rscript")]
    [InlineData("ExecStart=/usr/bin/tclsh8.6 x.tcl", "tclsh8.6")]
    [InlineData("ExecStart=/usr/bin/deno run x.ts", "deno")]
    [InlineData("ExecStart=/usr/bin/bun x.ts", "bun")]
    [InlineData("ExecStart=/usr/bin/nodejs x.js", "nodejs")]
    [InlineData("ExecStart=/lib64/ld-linux-x86-64.so.2 --library-path /opt/lib /usr/bin/python3 x", "python3.12")]
    public void Run_ExecLineReachesInterpreter_Flagged(string serviceSection, string runtime)
    {
        using FakeMachine m = Machine();
        m.Service("app.service", serviceSection);
        AssertFlagged(m, runtime);
    }

    [Theory]
    [InlineData("#!/usr/bin/python3\nprint(1)\n", "python3.12")]
    [InlineData("#!/usr/bin/env python3\nprint(1)\n", "python3.12")]
    [InlineData("#!/usr/bin/env -S node --max-old-space-size=64\n", "node")]
    [InlineData("#! /usr/bin/perl -wT\n", "perl")]
    [InlineData("#!/bin/sh\nset -e\ncd /srv\nexec java -jar app.jar \"$@\"\n", "java")]
    [InlineData("#!/bin/bash\n# python3 in a comment is fine\nfor i in 1 2; do echo $i; done\nnode app.js &\nwait\n", "node")]
    [InlineData("#!/bin/sh\nexport PY=/usr/bin/python3\n\"$PY\" app.py\n", "python3.12")]
    [InlineData("#!/bin/sh\ncat <<EOF >/tmp/x\nnot a command\nEOF\nexec ruby3.2 app.rb\n", "ruby3.2")]
    [InlineData("#!/bin/sh\n. /opt/app/lib.sh\n", "php8.3")]
    public void Run_ScriptReachesInterpreter_Flagged(string script, string runtime)
    {
        using FakeMachine m = Machine();
        m.Script("/opt/app/run", script).Script("/opt/app/lib.sh", "php8.3 -S 0:80\n")
            .Service("app.service", "ExecStart=/opt/app/run --port 8080");
        AssertFlagged(m, runtime);
    }

    [Fact]
    public void Run_SymlinkToInterpreter_FlaggedByTargetName()
    {
        using FakeMachine m = Machine();
        m.Symlink("/usr/local/bin/my-exporter", "/usr/bin/python3").Service("app.service", "ExecStart=/usr/local/bin/my-exporter");
        AssertFlagged(m, "python3.12");
    }

    [Fact]
    public void Run_AlternativesChainToJava_Flagged()
    {
        using FakeMachine m = Machine();
        m.Service("app.service", "ExecStart=java -jar x.jar");
        IReadOnlyList<UnitOffender> offenders = Scan(m);
        UnitOffender offender = Assert.Single(offenders);
        Assert.Contains("/usr/lib/jvm/java-21/bin/java", offender.Via);
    }

    [Fact]
    public void Run_ShebangScriptThroughPathAndSymlink_ViaShowsChain()
    {
        using FakeMachine m = Machine();
        m.Script("/opt/app/server.py", "#!/usr/bin/env python3\n").Symlink("/usr/local/bin/app-server", "/opt/app/server.py")
            .Service("app.service", "ExecStart=app-server");
        UnitOffender offender = Assert.Single(Scan(m));
        Assert.Equal("python3.12", offender.Runtime);
        Assert.Equal("ExecStart", offender.Directive);
        Assert.Equal("app-server", offender.Command);
        Assert.Contains("#!/usr/bin/env python3", offender.Via);
        Assert.EndsWith("/etc/systemd/system/app.service", offender.File);
    }

    [Fact]
    public void Run_EnvironmentVariableCommand_Expanded()
    {
        using FakeMachine m = Machine();
        m.Service("app.service", "Environment=\"RUNNER=/usr/bin/python3\" OTHER=1\nExecStart=${RUNNER} app.py");
        AssertFlagged(m, "python3.12");
    }

    [Fact]
    public void Run_EnvironmentFileVariable_Expanded()
    {
        using FakeMachine m = Machine();
        m.File("/etc/default/app", "# settings\nRUNNER=/usr/bin/node\n")
            .Service("app.service", "EnvironmentFile=-/etc/default/app\nExecStart=/bin/sh -c '$RUNNER app.js'");
        AssertFlagged(m, "node");
    }

    [Fact]
    public void Run_UnitPathVariableUsedInsideShell_Resolved()
    {
        using FakeMachine m = Machine();
        m.Elf("/opt/venv/bin/python3.11").Service("app.service", "Environment=PATH=/opt/venv/bin:/usr/bin\nExecStart=/bin/sh -c 'exec python3.11 app.py'");
        IReadOnlyList<UnitOffender> offenders = Scan(m);
        Assert.Contains("/opt/venv/bin/python3.11", Assert.Single(offenders).Via);
    }

    [Fact]
    public void Run_DropInAddsExecStartPre_FlaggedWithDropInFile()
    {
        using FakeMachine m = Machine();
        m.Service("app.service", "ExecStart=/usr/local/bin/halo-server", "/usr/lib/systemd/system")
            .File("/etc/systemd/system/app.service.d/10-pre.conf", "[Service]\nExecStartPre=/usr/bin/python3 migrate.py\n");
        UnitOffender offender = Assert.Single(Scan(m));
        Assert.EndsWith("app.service.d/10-pre.conf", offender.File);
        Assert.Equal("ExecStartPre", offender.Directive);
    }

    [Fact]
    public void Run_DropInResetsExecStartToCleanBinary_NotFlagged()
    {
        using FakeMachine m = Machine();
        m.Service("app.service", "ExecStart=/usr/bin/python3 old.py", "/usr/lib/systemd/system")
            .File("/etc/systemd/system/app.service.d/override.conf", "[Service]\nExecStart=\nExecStart=/usr/local/bin/halo-server\n");
        AssertClean(m);
    }

    [Fact]
    public void Run_EtcUnitOverridesUsrLibUnit_OnlyEtcCounts()
    {
        using FakeMachine m = Machine();
        m.Service("app.service", "ExecStart=/usr/bin/python3 old.py", "/usr/lib/systemd/system")
            .Service("app.service", "ExecStart=/usr/local/bin/halo-server");
        AssertClean(m);
    }

    [Fact]
    public void Run_MaskedUnit_NotFlagged()
    {
        using FakeMachine m = Machine();
        m.Service("app.service", "ExecStart=/usr/bin/python3 old.py", "/usr/lib/systemd/system")
            .Symlink("/etc/systemd/system/app.service", "/dev/null");
        AssertClean(m);
    }

    [Fact]
    public void Run_TypeWideDropIn_AppliesToEveryService()
    {
        using FakeMachine m = Machine();
        m.Service("app.service", "ExecStart=/usr/local/bin/halo-server")
            .File("/usr/lib/systemd/system/service.d/50-hook.conf", "[Service]\nExecStartPost=/usr/bin/perl /opt/hook.pl\n");
        AssertFlagged(m, "perl");
    }

    [Fact]
    public void Run_DashPrefixDropIn_Applies()
    {
        using FakeMachine m = Machine();
        m.Service("app-web.service", "ExecStart=/usr/local/bin/halo-server")
            .File("/run/systemd/system/app-.service.d/x.conf", "[Service]\nExecStartPre=/usr/bin/node pre.js\n");
        AssertFlagged(m, "node", "app-web.service");
    }

    [Fact]
    public void Run_SocketUnitExecStartPre_Flagged()
    {
        using FakeMachine m = Machine();
        m.Unit("app.socket", "[Socket]\nListenStream=8080\nExecStartPre=/usr/bin/python3 prep.py\n");
        AssertFlagged(m, "python3.12", "app.socket");
    }

    [Fact]
    public void Run_UserUnitInHomeDirectory_Flagged()
    {
        using FakeMachine m = Machine();
        m.Unit("app.service", "[Service]\nExecStart=/usr/bin/node app.js\n", "/home/alice/.config/systemd/user");
        UnitOffender offender = Assert.Single(Scan(m));
        Assert.Equal("user:/home/alice", offender.Scope);
    }

    [Fact]
    public void Run_PersonalUnitOverridesVendorUserUnit_PersonalCounts()
    {
        // ~/.local/share/systemd/user comes before /usr/lib/systemd/user in the user search path.
        using FakeMachine m = Machine();
        m.Unit("app.service", "[Service]\nExecStart=/usr/local/bin/halo-server\n", "/usr/lib/systemd/user")
            .Unit("app.service", "[Service]\nExecStart=/usr/bin/node app.js\n", "/home/alice/.local/share/systemd/user");
        UnitOffender offender = Assert.Single(Scan(m));
        Assert.Equal("user:/home/alice", offender.Scope);
    }

    [Fact]
    public void Run_GlobalUserUnitAndTemplate_Flagged()
    {
        using FakeMachine m = Machine();
        m.Unit("worker@.service", "[Service]\nExecStart=/usr/bin/python3 worker.py %i\n", "/usr/lib/systemd/user");
        AssertFlagged(m, "python3.12", "worker@.service");
    }

    [Fact]
    public void Run_LineContinuation_Joined()
    {
        using FakeMachine m = Machine();
        m.Unit("app.service", "[Service]\nExecStart=/usr/bin/env \\\n    FOO=1 \\\n    python3 app.py\n");
        AssertFlagged(m, "python3.12");
    }

    [Fact]
    public void Run_AllowlistedScript_NotFlagged()
    {
        using FakeMachine m = Machine();
        m.Script("/opt/legacy/exporter", "#!/usr/bin/python3\n").Service("app.service", "ExecStart=/opt/legacy/exporter");
        Assert.Empty(Scan(m, "/opt/legacy/exporter"));
        Assert.Single(Scan(m));
    }

    [Fact]
    public void Run_AllowlistedUnitName_NotFlagged()
    {
        using FakeMachine m = Machine();
        m.Service("app.service", "ExecStart=/usr/bin/python3 x");
        Assert.Empty(Scan(m, "app.service"));
    }

    [Fact]
    public void Run_CustomForbiddenList_ReplacesDefault()
    {
        using FakeMachine m = Machine();
        m.Elf("/usr/bin/gawk").Service("app.service", "ExecStart=/usr/bin/gawk -f x.awk\nExecStartPre=/usr/bin/python3 x");
        IReadOnlyList<UnitOffender> offenders = new UnitRuntimeScan(m.SystemRoot, new RuntimeCatalog(["gawk"]), []).Run();
        Assert.Equal("gawk", Assert.Single(offenders).Runtime);
    }

    [Theory]
    [InlineData("ExecStart=/usr/local/bin/my-python-exporter --port 9100")]
    [InlineData("ExecStart=/usr/local/bin/halo-server --config /etc/halo/halo.yaml")]
    [InlineData("ExecStart=/bin/sh -c 'echo python3 is not used here'")]
    [InlineData("ExecStart=/usr/bin/grep -r python /etc")]
    [InlineData("ExecStart=/bin/sh -c 'test -x /usr/bin/python3 || true'")]
    [InlineData("ExecStart=/bin/sh -c 'true # python3 app.py'")]
    [InlineData("ExecStart=/usr/bin/env RUNNER=python3 /usr/local/bin/halo-server")]
    [InlineData("ExecStart=/usr/local/bin/halo-server --model /var/lib/halo/models/python3")]
    [InlineData("ExecStart=/bin/sh -c 'cat > /tmp/x <<EOF\npython3 app.py\nEOF'")]
    [InlineData("ExecStart=/usr/local/bin/halo-server \\; python3")]
    [InlineData("ExecStart=/usr/local/bin/halo-server '; python3'")]
    [InlineData("ExecStart=/usr/bin/nice -n 5 /usr/local/bin/halo-server")]
    [InlineData("ExecStart=/bin/sh /opt/app/clean.sh")]
    [InlineData("ExecStart=/opt/app/clean.sh")]
    [InlineData("ExecStart=/opt/app/nodejs-helper")]
    [InlineData("ExecStart=/bin/sh -c 'case $1 in python3) echo py ;; *) true ;; esac'")]
    public void Run_CleanUnit_NotFlagged(string serviceSection)
    {
        using FakeMachine m = Machine();
        m.Elf("/usr/local/bin/my-python-exporter")
            .Script("/opt/app/clean.sh", "#!/bin/sh\nexec /usr/local/bin/halo-server \"$@\"\n")
            .Elf("/opt/app/nodejs-helper")
            .Service("app.service", serviceSection);
        AssertClean(m);
    }

    [Fact]
    public void Run_ScriptNamedLikeRuntimeButShellInside_FlaggedOnlyByName()
    {
        // A file called "python3" is python as far as anyone reading the unit can tell: the name decides.
        using FakeMachine m = Machine();
        m.Elf("/opt/bin/python3").Service("app.service", "ExecStart=/opt/bin/python3");
        AssertFlagged(m, "python3");
    }

    [Fact]
    public void Run_SymlinkLoopInRoot_DoesNotHang()
    {
        using FakeMachine m = Machine();
        m.Symlink("/opt/a", "/opt/b").Symlink("/opt/b", "/opt/a").Service("app.service", "ExecStart=/opt/a");
        AssertClean(m);
    }

    [Fact]
    public void Run_ScriptThatRunsItself_DoesNotRecurseForever()
    {
        using FakeMachine m = Machine();
        m.Script("/opt/app/loop.sh", "#!/bin/sh\n/opt/app/loop.sh\n").Service("app.service", "ExecStart=/opt/app/loop.sh");
        AssertClean(m);
    }

    [Fact]
    public void Run_AbsoluteSymlinkInsideRoot_NeverReadsHostFile()
    {
        // /usr/local/bin/tool -> /usr/bin/tool: the root's /usr/bin/tool is a python script; the host's
        // /usr/bin has no such file. Resolution must stay inside the root.
        using FakeMachine m = Machine();
        m.Script("/usr/bin/tool", "#!/usr/bin/python3\n").Symlink("/usr/local/bin/tool", "/usr/bin/tool")
            .Service("app.service", "ExecStart=/usr/local/bin/tool");
        AssertFlagged(m, "python3.12");
    }

    [Fact]
    public void Run_Counts_UnitsAndCommandsScanned()
    {
        using FakeMachine m = Machine();
        m.Service("a.service", "ExecStartPre=/usr/local/bin/halo-server\nExecStart=/usr/local/bin/halo-server")
            .Service("b.service", "ExecStart=/usr/local/bin/halo-server");
        var scan = new UnitRuntimeScan(m.SystemRoot, RuntimeCatalog.Default, []);
        scan.Run();
        Assert.Equal(2, scan.UnitsScanned);
        Assert.Equal(3, scan.CommandsScanned);
    }
}
