using System.CommandLine;

namespace Halo.Installer.Convert;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var command = new Command("convert", "Convert a GGUF file or safetensors directory to .h1b");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("halo convert: not available in this build yet");
            return Cli.Failure;
        });
        return command;
    }
}
