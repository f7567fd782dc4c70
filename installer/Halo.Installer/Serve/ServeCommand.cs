using System.CommandLine;

namespace Halo.Installer.Serve;

internal static class ServeCommand
{
    public static Command Create()
    {
        var command = new Command("serve", "Run the daemon in the foreground");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("halo serve: not available in this build yet");
            return Cli.Failure;
        });
        return command;
    }
}
