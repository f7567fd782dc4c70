using System.CommandLine;
using Halo.Installer;

// The `halo` CLI (DESIGN.md section 4). Each command group lives in its own folder and contributes one
// Command; this file only assembles them and maps parse errors to exit code 2.
var root = new RootCommand("halo: run, serve, check and provision a BitNet b1.58 appliance");
foreach (Command command in Commands.All())
{
    root.Subcommands.Add(command);
}

return Cli.Invoke(root, args);
