using System.Text.RegularExpressions;
using Halo.Installer.Doctor;
using Halo.Installer.Doctor.Checks;

namespace Halo.Installer.Provision.Steps;

/// <summary>
/// `ttm.pages_limit` on the kernel command line so the GPU may map most of the unified memory. Never silent:
/// the step needs consent (a "yes" at the prompt, or --kernel-args); `--yes` alone does not cover it, because a
/// wrong boot entry can leave a headless box unbootable. GRUB (/etc/default/grub + update-grub or
/// grub-mkconfig), Fedora's grubby, or /etc/kernel/cmdline (systemd-boot / UKI); otherwise it says what to add.
/// </summary>
public sealed partial class KernelArgsStep : IProvisionStep
{
    public const string GrubDefaults = "/etc/default/grub";
    public const string KernelCmdline = "/etc/kernel/cmdline";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(5);

    public Task<ProvisionStep> PlanAsync(ProvisionContext context, CancellationToken cancellationToken)
    {
        var step = new ProvisionStep("kernel", "GPU memory limit (ttm.pages_limit) on the kernel command line");
        Machine machine = context.Machine;
        if (!machine.HasStrixHalo)
        {
            step.AlreadyDone = "skipped: no Strix Halo GPU, the TTM limit stays as it is";
            return Task.FromResult(step);
        }

        long memory = machine.MemoryBytes;
        if (memory <= 0)
        {
            step.AlreadyDone = "skipped: MemTotal unreadable";
            return Task.FromResult(step);
        }

        long pages = TtmLimitCheck.RecommendedPages(memory);
        string argument = $"ttm.pages_limit={pages}";
        string? running = TtmLimitCheck.CommandLineValue(machine.KernelCommandLine, "ttm.pages_limit");
        bool hasGttsize = TtmLimitCheck.CommandLineValue(machine.KernelCommandLine, "amdgpu.gttsize") is not null;
        if (long.TryParse(running, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long runningPages)
            && TtmLimitCheck.IsAdequate(runningPages, memory) && !hasGttsize)
        {
            // An adequate limit the operator chose is kept, even if it is not exactly ours.
            step.AlreadyDone = $"ttm.pages_limit={running} is on the running kernel's command line";
            return Task.FromResult(step);
        }

        string? grub = context.Root.ReadText(GrubDefaults);
        string? kernelCmdline = context.Root.ReadText(KernelCmdline);
        if ((grub is not null && HasArgument(grub, argument)) || (kernelCmdline is not null && HasArgument(kernelCmdline, argument)))
        {
            step.AlreadyDone = $"{argument} is configured for the next boot: reboot to apply it";
            return Task.FromResult(step);
        }

        DistroFamily family = context.Os?.Family ?? DistroFamily.Unknown;
        step.NeedsConsent = $"add {argument} to the kernel command line (GPU may then map {pages * TtmLimitCheck.PageSize >> 30} GiB of {memory >> 30} GiB; takes effect after a reboot)";
        if (family == DistroFamily.Fedora && context.Root.Which("grubby", ["/usr/sbin", "/usr/bin", "/sbin"]) is not null)
        {
            string[] arguments = ["--update-kernel=ALL", $"--args={argument}", "--remove-args=amdgpu.gttsize"];
            step.Actions.Add(new ProvisionAction(ActionKind.Run, $"grubby {string.Join(' ', arguments)}",
                ct => ProvisionContext.RunAsync("grubby", arguments, CommandTimeout, ct), LiveOnly: true));
        }
        else if (grub is not null)
        {
            step.Actions.Add(new ProvisionAction(ActionKind.Edit, $"{GrubDefaults}: GRUB_CMDLINE_LINUX_DEFAULT += {argument} (replacing any ttm.pages_limit / amdgpu.gttsize)", _ =>
            {
                context.WriteFile(GrubDefaults, EditGrub(grub, argument), context.Root.Mode(GrubDefaults));
                return Task.CompletedTask;
            }));
            (string program, string[] arguments) = family == DistroFamily.Debian && context.Root.Which("update-grub", ["/usr/sbin", "/sbin"]) is not null
                ? ("update-grub", Array.Empty<string>())
                : ("grub-mkconfig", ["-o", "/boot/grub/grub.cfg"]);
            step.Actions.Add(new ProvisionAction(ActionKind.Run, ProvisionContext.Describe(program, arguments).Trim(),
                ct => ProvisionContext.RunAsync(program, arguments, CommandTimeout, ct), LiveOnly: true));
        }
        else if (kernelCmdline is not null)
        {
            step.Actions.Add(new ProvisionAction(ActionKind.Edit, $"{KernelCmdline} += {argument}", _ =>
            {
                context.WriteFile(KernelCmdline, ReplaceArguments(kernelCmdline.Trim(), argument) + "\n", context.Root.Mode(KernelCmdline));
                return Task.CompletedTask;
            }));
            step.Notes.Add("rebuild the boot image so it takes the new command line (kernel-install / mkinitcpio -P / dracut), then reboot");
        }
        else
        {
            step.NeedsConsent = null;
            step.Notes.Add($"no GRUB defaults, grubby or {KernelCmdline} found: add {argument} to your boot loader's kernel command line by hand, then reboot");
        }

        return Task.FromResult(step);
    }

    public static bool HasArgument(string text, string argument) =>
        Regex.IsMatch(text, $@"(^|[\s""']){Regex.Escape(argument)}($|[\s""'])");

    /// <summary>Sets the argument inside GRUB_CMDLINE_LINUX_DEFAULT="...", adding the line when absent.</summary>
    public static string EditGrub(string grub, string argument)
    {
        Match line = GrubDefaultLine().Match(grub);
        if (!line.Success)
        {
            return grub.TrimEnd('\n') + $"\nGRUB_CMDLINE_LINUX_DEFAULT=\"{argument}\"\n";
        }

        string value = ReplaceArguments(line.Groups["value"].Value, argument);
        return grub[..line.Groups["value"].Index] + value + grub[(line.Groups["value"].Index + line.Groups["value"].Length)..];
    }

    private static string ReplaceArguments(string commandLine, string argument)
    {
        var words = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Where(w => !w.StartsWith("ttm.pages_limit=", StringComparison.Ordinal) && !w.StartsWith("amdgpu.gttsize=", StringComparison.Ordinal))
            .ToList();
        words.Add(argument);
        return string.Join(' ', words);
    }

    [GeneratedRegex("^GRUB_CMDLINE_LINUX_DEFAULT=\"(?<value>[^\"]*)\"", RegexOptions.Multiline)]
    private static partial Regex GrubDefaultLine();
}
