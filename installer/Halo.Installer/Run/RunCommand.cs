using System.CommandLine;

namespace Halo.Installer.Run;

internal static class RunCommand
{
    public static Command Create()
    {
        var command = new Command("run", "Generate text from a model file");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("halo run: not available in this build yet");
            return Cli.Failure;
        });
        return command;
    }
}
