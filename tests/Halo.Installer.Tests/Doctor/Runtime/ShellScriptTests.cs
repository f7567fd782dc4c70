using Halo.Installer.Doctor.Runtime;

namespace Halo.Installer.Tests.Doctor.Runtime;

public class ShellScriptTests
{
    private static List<string> CommandNames(string script) =>
        ShellScript.Commands(script, new Dictionary<string, string>()).Select(c => c[0]).ToList();

    [Fact]
    public void Commands_Operators_SplitIntoSimpleCommands()
    {
        Assert.Equal(["a", "b", "c", "d", "e", "f"], CommandNames("a && b || c; d | e & f"));
    }

    [Fact]
    public void Commands_AssignmentsRedirectionsKeywords_Skipped()
    {
        Assert.Equal(["x", "y", "z"], CommandNames("FOO=1 BAR=2 x >/dev/null 2>&1; if y; then z </dev/null; fi"));
    }

    [Fact]
    public void Commands_CommandSubstitutions_ParsedToo()
    {
        List<string> names = CommandNames("echo \"$(inner1 a)\" `inner2` $((1+2)) <(inner3)");
        Assert.Contains("inner1", names);
        Assert.Contains("inner2", names);
        Assert.Contains("inner3", names);
        Assert.Contains("echo", names);
    }

    [Fact]
    public void Commands_CommentsQuotesAndHeredocs_NotCommands()
    {
        Assert.Equal(["cat", "real"], CommandNames("# python3\ncat <<'EOF'\npython3 x\nEOF\nreal 'python3 x' \"node\""));
    }

    [Fact]
    public void Commands_ForAndCase_BodiesFound()
    {
        Assert.Equal(["body", "arm"], CommandNames("for i in a b; do body $i; done\ncase $x in\n  a) arm ;;\nesac"));
    }

    [Fact]
    public void Commands_AssignedVariable_ExpandsInLaterCommandWord()
    {
        var commands = ShellScript.Commands("P=/usr/bin/node\nexport Q=/usr/bin/perl\n$P a\n\"${Q}\" b", new Dictionary<string, string>());
        Assert.Equal(["/usr/bin/node", "/usr/bin/perl"], commands.Select(c => c[0]));
    }

    [Fact]
    public void Commands_LineContinuation_OneCommand()
    {
        var commands = ShellScript.Commands("exec \\\n  node \\\n  app.js", new Dictionary<string, string>());
        Assert.Equal(["exec", "node", "app.js"], Assert.Single(commands));
    }
}
