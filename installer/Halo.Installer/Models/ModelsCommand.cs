using System.CommandLine;

namespace Halo.Installer.Models;

internal static class ModelsCommand
{
    public static Command Create()
    {
        var command = new Command("models", "Synthesize, download, list, verify and remove models");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("halo models: not available in this build yet");
            return Cli.Failure;
        });
        return command;
    }
}
