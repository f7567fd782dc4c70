using System.CommandLine;

namespace Halo.Installer.Doctor;

/// <summary>`halo doctor [--json] [--textfile DIR] [--root PATH]` (DESIGN.md sections 4 and 6).</summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object (schema: installer/Halo.Installer/Doctor/README.md)" };
        var textfile = new Option<string?>("--textfile") { HelpName = "DIR", Description = "Also write halo_doctor.prom into DIR (node_exporter textfile collector), atomically" };
        var root = new Option<string?>("--root") { HelpName = "PATH", Description = "Check the machine under PATH instead of / (reads /etc, /proc, /sys, ... there; live probes are skipped)" };
        var command = new Command("doctor", "Check this machine and say how to fix what is wrong (exit 0 ok, 1 warnings, 2 failures)");
        command.Options.Add(json);
        command.Options.Add(textfile);
        command.Options.Add(root);
        command.SetAction(async (parse, cancellationToken) =>
        {
            string rootPath = parse.GetValue(root) ?? "/";
            if (!Directory.Exists(rootPath))
            {
                Console.Error.WriteLine($"halo doctor: --root {rootPath}: no such directory");
                return Cli.UsageError;
            }

            var context = new DoctorContext(new SystemRoot(rootPath));
            DoctorReport report = await DoctorReport.RunAsync(context, cancellationToken: cancellationToken);
            if (parse.GetValue(textfile) is { Length: > 0 } dir)
            {
                try
                {
                    PromTextfile.Write(dir, report, DateTimeOffset.UtcNow);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Console.Error.WriteLine($"halo doctor: cannot write {Path.Combine(dir, PromTextfile.FileName)}: {e.Message}");
                    return Cli.UsageError;
                }
            }

            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(report.ToJsonText());
            }
            else
            {
                string label = context.Root.IsLive ? "this machine" : "root " + context.Root.HostRoot;
                ReportView.Write(report, label, Console.Out, terminal: !Console.IsOutputRedirected);
            }

            return report.ExitCode;
        });
        return command;
    }
}
