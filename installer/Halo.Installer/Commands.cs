using System.CommandLine;

namespace Halo.Installer;

/// <summary>The command groups of the CLI, in the order `halo --help` lists them.</summary>
internal static class Commands
{
    public static IEnumerable<Command> All()
    {
        yield return Run.RunCommand.Create();
        yield return Bench.BenchCommand.Create();
        yield return Serve.ServeCommand.Create();
        yield return Models.ModelsCommand.Create();
        yield return Convert.ConvertCommand.Create();
        yield return Doctor.DoctorCommand.Create();
        yield return Provision.ProvisionCommand.Create();
        yield return Mcp.McpCommand.Create();
    }
}
