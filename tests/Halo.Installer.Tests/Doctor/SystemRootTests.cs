using Halo.Installer.Doctor;

namespace Halo.Installer.Tests.Doctor;

public class SystemRootTests
{
    [Fact]
    public void Resolve_AbsoluteAndRelativeLinks_StayInsideRoot()
    {
        using var m = new FakeMachine();
        m.Elf("/usr/bin/python3.12").Symlink("/usr/bin/python3", "python3.12").Symlink("/bin", "/usr/bin")
            .Symlink("/usr/local/bin/py", "/bin/python3").Symlink("/opt/up", "../../../../../usr/bin/python3");

        Assert.Equal("/usr/bin/python3.12", m.SystemRoot.Resolve("/usr/local/bin/py"));
        Assert.Equal("/usr/bin/python3.12", m.SystemRoot.Resolve("/opt/up"));
        Assert.Equal("/usr/bin/python3.12", m.SystemRoot.Resolve("/bin/../bin/python3"));
    }

    [Fact]
    public void Host_DotDotAboveRoot_ClampedAtRoot()
    {
        using var m = new FakeMachine();
        Assert.Equal(Path.Combine(m.Root, "etc/passwd"), m.SystemRoot.Host("/../../etc/passwd"));
    }

    [Fact]
    public void Resolve_Loop_ReturnsNull()
    {
        using var m = new FakeMachine();
        m.Symlink("/a", "/b").Symlink("/b", "/a");
        Assert.Null(m.SystemRoot.Resolve("/a"));
    }

    [Fact]
    public void Which_SearchesPathForExecutableFiles()
    {
        using var m = new FakeMachine();
        m.File("/usr/local/bin/tool", "not executable").Elf("/usr/bin/tool");
        Assert.Equal("/usr/bin/tool", m.SystemRoot.Which("tool", ["/usr/local/bin", "/usr/bin"]));
        Assert.Null(m.SystemRoot.Which("missing", ["/usr/bin"]));
    }
}
