using System.Text.Json.Nodes;
using Halo.Installer.Doctor.Runtime;

namespace Halo.Installer.Doctor.Checks;

/// <summary>
/// `processes.interpreter-rss`: no interpreter process holds more than `doctor.interpreter_rss_mb` (100 MB)
/// of RAM. A warning, not a failure: the units check enforces the rule; this one spots memory that the
/// model could use and interpreters started outside systemd.
/// </summary>
public sealed class InterpreterProcessCheck : FileCheck
{
    public const string CheckId = "processes.interpreter-rss";

    public override string Id => CheckId;

    public override string Title => "No large interpreter processes";

    protected override CheckResult Run(DoctorContext context)
    {
        if (!context.Root.DirectoryExists("/proc"))
        {
            return Skip("no /proc under this root") with { Details = new JsonObject { ["offenders"] = new JsonArray() } };
        }

        int threshold = context.Settings.InterpreterRssMib;
        var scan = new ProcessScan(context.Root, new RuntimeCatalog(context.Settings.ForbiddenRuntimes), context.Settings.Allowed);
        IReadOnlyList<ProcessOffender> offenders = scan.Run(threshold);
        var list = new JsonArray();
        foreach (ProcessOffender o in offenders)
        {
            list.Add(new JsonObject
            {
                ["pid"] = o.Pid,
                ["unit"] = o.Unit,
                ["exe"] = o.Exe,
                ["runtime"] = o.Runtime,
                ["rss_mib"] = o.RssMib,
                ["command"] = o.Command,
            });
        }

        var details = new JsonObject { ["offenders"] = list, ["threshold_mib"] = threshold, ["processes_scanned"] = scan.ProcessesSeen };
        if (offenders.Count == 0)
        {
            return Ok($"{scan.ProcessesSeen} processes: no interpreter over {threshold} MiB") with { Details = details };
        }

        string named = string.Join(", ", offenders.Take(3).Select(o => $"{o.Runtime} pid {o.Pid} ({o.RssMib} MiB{(o.Unit is null ? "" : ", " + o.Unit)})"));
        return Warn($"{offenders.Count} interpreter process(es) over {threshold} MiB: {named}",
            "stop them (systemctl stop UNIT / kill PID), or raise doctor.interpreter_rss_mb in /etc/halo/halo.yaml") with { Details = details };
    }
}
