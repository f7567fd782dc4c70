using Halo.Installer.Doctor.Runtime;

namespace Halo.Installer.Tests.Doctor.Runtime;

public class ExecCommandLineTests
{
    private static readonly Dictionary<string, string> NoEnvironment = [];

    [Fact]
    public void Parse_PrefixesAndArgv0Override_Stripped()
    {
        ExecCommand command = Assert.Single(ExecCommandLine.Parse("-@/usr/bin/python3 fake-name app.py", NoEnvironment));
        Assert.Equal(["/usr/bin/python3", "app.py"], command.Argv);
        Assert.False(command.ViaShell);
    }

    [Fact]
    public void Parse_SemicolonWord_SeparatesCommands()
    {
        IReadOnlyList<ExecCommand> commands = ExecCommandLine.Parse("/bin/a 1 ; /bin/b 2;3 \\; 4", NoEnvironment);
        Assert.Equal(2, commands.Count);
        Assert.Equal(["/bin/a", "1"], commands[0].Argv);
        Assert.Equal(["/bin/b", "2;3", ";", "4"], commands[1].Argv);
    }

    [Fact]
    public void Parse_QuotesAndEscapes_OneWordEach()
    {
        ExecCommand command = Assert.Single(ExecCommandLine.Parse("/bin/sh -c 'exec  x \"y\"' \"a b\" c\\x41", NoEnvironment));
        Assert.Equal(["/bin/sh", "-c", "exec  x \"y\"", "a b", "cA"], command.Argv);
    }

    [Fact]
    public void Parse_Variables_BracedInWordWholeWordSplit()
    {
        var environment = new Dictionary<string, string> { ["BIN"] = "/usr/bin", ["ARGS"] = "-u  -v" };
        ExecCommand command = Assert.Single(ExecCommandLine.Parse("${BIN}/python3 $ARGS 100%%", environment));
        Assert.Equal(["/usr/bin/python3", "-u", "-v", "100%"], command.Argv);
    }

    [Fact]
    public void Parse_PipePrefix_MarksShell()
    {
        ExecCommand command = Assert.Single(ExecCommandLine.Parse("|echo hi", NoEnvironment));
        Assert.True(command.ViaShell);
    }
}
