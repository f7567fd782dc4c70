using System.CommandLine;

namespace Halo.Installer;

/// <summary>The command groups of the CLI, in the order `halo --help` lists them.</summary>
internal static class Commands
{
    public static IEnumerable<Command> All()
    {
        yield break;
    }
}
