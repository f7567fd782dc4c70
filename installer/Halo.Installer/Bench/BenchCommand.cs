using System.CommandLine;

namespace Halo.Installer.Bench;

internal static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure prefill and decode speed, load time and memory");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("halo bench: not available in this build yet");
            return Cli.Failure;
        });
        return command;
    }
}
