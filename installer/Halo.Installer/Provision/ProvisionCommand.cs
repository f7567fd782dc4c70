using System.CommandLine;

namespace Halo.Installer.Provision;

internal static class ProvisionCommand
{
    public static Command Create()
    {
        var command = new Command("provision", "Make this machine a Halo appliance");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("halo provision: not available in this build yet");
            return Cli.Failure;
        });
        return command;
    }
}
