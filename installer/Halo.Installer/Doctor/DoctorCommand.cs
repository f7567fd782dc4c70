using System.CommandLine;

namespace Halo.Installer.Doctor;

internal static class DoctorCommand
{
    public static Command Create()
    {
        var command = new Command("doctor", "Check this machine and say how to fix what is wrong");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("halo doctor: not available in this build yet");
            return Cli.Failure;
        });
        return command;
    }
}
