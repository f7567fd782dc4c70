using System.CommandLine;
using System.Runtime.InteropServices;
using Halo.Installer.Doctor;
using Spectre.Console;

namespace Halo.Installer.Provision;

/// <summary>`halo provision [--dry-run] [--root PATH] [--yes] [--kernel-args]` (DESIGN.md sections 4 and 7).</summary>
internal static partial class ProvisionCommand
{
    public static Command Create()
    {
        var dryRun = new Option<bool>("--dry-run") { Description = "Print every step, command and file of the plan; change nothing" };
        var root = new Option<string?>("--root") { HelpName = "PATH", Description = "Provision the system under PATH (image builds, tests): files are edited there, live-only commands are skipped" };
        var yes = new Option<bool>("--yes") { Description = "Apply without asking (the kernel command line still needs a yes at the prompt or --kernel-args)" };
        var kernelArgs = new Option<bool>("--kernel-args") { Description = "Consent to add ttm.pages_limit to the kernel command line (GPU memory limit)" };
        var model = new Option<string>("--model") { HelpName = "NAME", Description = "First model to pull", DefaultValueFactory = _ => ProvisionOptions.DefaultModel };
        var command = new Command("provision", "Make this machine a Halo appliance: ROCm, the halo user, directories, config, units, model, then doctor");
        command.Options.Add(dryRun);
        command.Options.Add(root);
        command.Options.Add(yes);
        command.Options.Add(kernelArgs);
        command.Options.Add(model);
        command.SetAction(async (parse, cancellationToken) =>
        {
            string rootPath = parse.GetValue(root) ?? "/";
            if (!Directory.Exists(rootPath))
            {
                Console.Error.WriteLine($"halo provision: --root {rootPath}: no such directory");
                return Cli.UsageError;
            }

            bool interactive = !Console.IsInputRedirected && !Console.IsOutputRedirected;
            var options = new ProvisionOptions(parse.GetValue(dryRun), parse.GetValue(yes), parse.GetValue(kernelArgs), interactive, parse.GetValue(model)!);
            return await RunAsync(new SystemRoot(rootPath), options, cancellationToken);
        });
        return command;
    }

    public static async Task<int> RunAsync(SystemRoot root, ProvisionOptions options, CancellationToken cancellationToken)
    {
        var context = new ProvisionContext(root, options) { Terminal = !Console.IsOutputRedirected };
        var provisioner = new Provisioner(context);
        string where = root.IsLive ? "this machine" : "root " + root.HostRoot;
        Console.Out.WriteLine($"halo provision: {context.Os?.PrettyName ?? "unknown distribution"} ({(context.Os?.Family ?? DistroFamily.Unknown).ToString().ToLowerInvariant()} family), {where}");
        try
        {
            IReadOnlyList<ProvisionStep> plan = await provisioner.PlanAsync(cancellationToken);
            provisioner.Print(plan);
            int changes = provisioner.ChangeCount(plan);
            if (options.DryRun)
            {
                Console.Out.WriteLine($"Dry run: {changes} change(s) planned, nothing changed.");
                return Cli.Ok;
            }

            if (changes > 0 && root.IsLive && geteuid() != 0)
            {
                Console.Error.WriteLine("halo provision: changing the system needs root: run it with sudo (or see the plan with --dry-run)");
                return Cli.Failure;
            }

            if (changes > 0 && !options.Yes && !Confirm(options, $"Apply these {changes} change(s)?"))
            {
                Console.Error.WriteLine(options.Interactive
                    ? "halo provision: nothing changed"
                    : "halo provision: not a terminal and no --yes: nothing changed (use --yes to apply, --dry-run to only print)");
                return options.Interactive ? Cli.Ok : Cli.Failure;
            }

            await provisioner.ApplyAsync(plan, question => options.KernelArgs || Confirm(options, $"{question}. Change the kernel command line?"), cancellationToken);
        }
        catch (ProvisionException e)
        {
            Console.Error.WriteLine($"halo provision: {e.Message}");
            return Cli.Failure;
        }

        Console.Out.WriteLine();
        var doctor = new DoctorContext(root);
        DoctorReport report = await DoctorReport.RunAsync(doctor, cancellationToken: cancellationToken);
        ReportView.Write(report, where, Console.Out, terminal: !Console.IsOutputRedirected);
        return Cli.Ok;
    }

    /// <summary>A yes/no question on the terminal, default no; never asked when nobody can answer.</summary>
    private static bool Confirm(ProvisionOptions options, string question) =>
        options.Interactive && AnsiConsole.Confirm(Markup.Escape(question), defaultValue: false);

    [LibraryImport("libc", SetLastError = false)]
    private static partial uint geteuid();
}
