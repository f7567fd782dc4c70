using Halo.Installer.Doctor;
using Halo.Installer.Provision.Steps;
using Spectre.Console;

namespace Halo.Installer.Provision;

/// <summary>
/// Plan, then apply (DESIGN.md section 7): every step looks at the machine and lists the changes still
/// needed; the plan is printed (all of it in --dry-run); applying runs the changes in order and stops at the
/// first error. Planning again after an apply finds nothing left to do.
/// </summary>
public sealed class Provisioner
{
    private readonly ProvisionContext _context;

    public Provisioner(ProvisionContext context)
    {
        _context = context;
    }

    public static IReadOnlyList<IProvisionStep> Steps() =>
        [new PackagesStep(), new UserStep(), new DirectoriesStep(), new KernelArgsStep(), new UnitsStep(), new ModelStep(), new StartStep()];

    public async Task<IReadOnlyList<ProvisionStep>> PlanAsync(CancellationToken cancellationToken)
    {
        var plan = new List<ProvisionStep>();
        foreach (IProvisionStep step in Steps())
        {
            plan.Add(await step.PlanAsync(_context, cancellationToken));
        }

        return plan;
    }

    /// <summary>Actions that would change something here (LiveOnly actions under --root do not).</summary>
    public int ChangeCount(IReadOnlyList<ProvisionStep> plan) =>
        plan.Sum(s => s.Actions.Count(a => _context.Live || !a.LiveOnly));

    /// <summary>The plan as (tag, text) lines: tag "" is a step header, else ok / ask / run / write / ... / note.</summary>
    public IEnumerable<(string Tag, string Text)> PlanLines(IReadOnlyList<ProvisionStep> plan)
    {
        foreach (ProvisionStep step in plan)
        {
            yield return ("", step.Title);
            if (step.AlreadyDone is not null)
            {
                yield return ("ok", step.AlreadyDone);
            }

            if (step.NeedsConsent is not null)
            {
                yield return ("ask", step.NeedsConsent);
            }

            foreach (ProvisionAction action in step.Actions)
            {
                string suffix = action.LiveOnly && !_context.Live ? "   [live system only: skipped under --root]" : "";
                yield return (action.Kind.ToString().ToLowerInvariant(), action.Description + suffix);
            }

            foreach (string note in step.Notes)
            {
                yield return ("note", note);
            }
        }
    }

    /// <summary>Prints the plan: coloured through Spectre.Console on a terminal, plain `==>` lines otherwise.</summary>
    public void Print(IReadOnlyList<ProvisionStep> plan)
    {
        TextWriter output = _context.Out;
        IAnsiConsole? console = _context.Terminal ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) }) : null;
        foreach ((string tag, string text) in PlanLines(plan))
        {
            if (console is null)
            {
                output.WriteLine(tag.Length == 0 ? $"==> {text}" : $"    {tag,-6} {text}");
                continue;
            }

            string colour = tag switch { "" => "bold", "ok" => "green", "ask" => "yellow", "note" => "grey", _ => "aqua" };
            console.MarkupLine(tag.Length == 0
                ? $"[blue]==>[/] [{colour}]{Markup.Escape(text)}[/]"
                : $"    [{colour}]{Markup.Escape(tag),-6}[/] {Markup.Escape(text)}");
        }
    }

    /// <summary>
    /// Applies the plan. <paramref name="consent"/> is asked for each step that needs it (the kernel
    /// command line); a step without consent is skipped with its command printed.
    /// </summary>
    public async Task ApplyAsync(IReadOnlyList<ProvisionStep> plan, Func<string, bool> consent, CancellationToken cancellationToken)
    {
        TextWriter output = _context.Out;
        foreach (ProvisionStep step in plan)
        {
            if (step.Actions.Count == 0)
            {
                continue;
            }

            if (step.NeedsConsent is not null && !consent(step.NeedsConsent))
            {
                output.WriteLine($"--- {step.Title}: not changed (no consent). To do it later: sudo halo provision --kernel-args, or by hand: {string.Join("; ", step.Actions.Select(a => a.Description))}");
                continue;
            }

            output.WriteLine($"--> {step.Title}");
            foreach (ProvisionAction action in step.Actions)
            {
                if (action.LiveOnly && !_context.Live)
                {
                    output.WriteLine($"    skip   {action.Description} (live system only)");
                    continue;
                }

                output.WriteLine($"    {action.Kind.ToString().ToLowerInvariant(),-6} {action.Description}");
                try
                {
                    await action.Apply(cancellationToken);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new ProvisionException($"{step.Title}: {action.Description}: {e.Message}");
                }
            }
        }
    }
}
