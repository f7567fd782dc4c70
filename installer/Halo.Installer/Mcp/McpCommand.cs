using System.CommandLine;

namespace Halo.Installer.Mcp;

internal static class McpCommand
{
    public static Command Create()
    {
        var command = new Command("mcp", "Serve the appliance as MCP tools over stdio");
        command.SetAction(_ =>
        {
            Console.Error.WriteLine("halo mcp: not available in this build yet");
            return Cli.Failure;
        });
        return command;
    }
}
