using Spectre.Console;

namespace Halo.Installer.Doctor;

/// <summary>
/// The people's view of a report, like `flutter doctor`: one line per check with `[✓]`, `[!]`, `[✗]` or
/// `[-]` (skipped), the hint indented below anything that needs action, and a summary line. Colours through
/// Spectre.Console on a terminal; the same lines without escape codes when the output is redirected.
/// </summary>
public static class ReportView
{
    public static string Symbol(CheckStatus status) => status switch
    {
        CheckStatus.Ok => "[✓]",
        CheckStatus.Warn => "[!]",
        CheckStatus.Fail => "[✗]",
        _ => "[-]",
    };

    public static string SummaryLine(DoctorReport report)
    {
        int fail = report.Count(CheckStatus.Fail);
        int warn = report.Count(CheckStatus.Warn);
        string counts = $"{report.Count(CheckStatus.Ok)} ok, {warn} warning{(warn == 1 ? "" : "s")}, {fail} failure{(fail == 1 ? "" : "s")}, {report.Count(CheckStatus.Skip)} skipped";
        return fail + warn == 0 ? $"• No issues found ({counts})." : $"! Doctor found issues: {counts}.";
    }

    /// <summary>Plain text lines, as written when stdout is not a terminal.</summary>
    public static IEnumerable<string> PlainLines(DoctorReport report, string rootLabel)
    {
        yield return $"Doctor summary ({rootLabel}):";
        foreach (CheckResult check in report.Checks)
        {
            yield return $"{Symbol(check.Status)} {check.Title} ({check.Id}): {check.Finding}";
            if (check.Hint.Length > 0 && check.Status is CheckStatus.Warn or CheckStatus.Fail)
            {
                yield return $"    → {check.Hint}";
            }
        }

        yield return "";
        yield return SummaryLine(report);
    }

    public static void Write(DoctorReport report, string rootLabel, TextWriter output, bool terminal)
    {
        if (!terminal)
        {
            foreach (string line in PlainLines(report, rootLabel))
            {
                output.WriteLine(line);
            }

            return;
        }

        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
        console.MarkupLine($"[bold]Doctor summary[/] [grey]({Markup.Escape(rootLabel)})[/]:");
        foreach (CheckResult check in report.Checks)
        {
            string colour = check.Status switch
            {
                CheckStatus.Ok => "green",
                CheckStatus.Warn => "yellow",
                CheckStatus.Fail => "red",
                _ => "grey",
            };
            console.MarkupLine($"[{colour}]{Markup.Escape(Symbol(check.Status))}[/] [bold]{Markup.Escape(check.Title)}[/] [grey]({Markup.Escape(check.Id)})[/]: {Markup.Escape(check.Finding)}");
            if (check.Hint.Length > 0 && check.Status is CheckStatus.Warn or CheckStatus.Fail)
            {
                console.MarkupLine($"    [{colour}]→[/] {Markup.Escape(check.Hint)}");
            }
        }

        console.WriteLine();
        string summaryColour = report.ExitCode switch { 0 => "green", 1 => "yellow", _ => "red" };
        console.MarkupLine($"[{summaryColour}]{Markup.Escape(SummaryLine(report))}[/]");
    }
}
