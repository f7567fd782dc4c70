using System.Text.Json.Nodes;
using Halo.Installer.Doctor.Runtime;

namespace Halo.Installer.Doctor.Checks;

/// <summary>`units.forbidden-runtime`: no Exec*= command of any unit or drop-in reaches an interpreter (DESIGN.md section 6).</summary>
public sealed class ForbiddenRuntimeCheck : FileCheck
{
    public const string CheckId = "units.forbidden-runtime";

    public override string Id => CheckId;

    public override string Title => "No interpreter in systemd units";

    protected override CheckResult Run(DoctorContext context)
    {
        var scan = new UnitRuntimeScan(context.Root, new RuntimeCatalog(context.Settings.ForbiddenRuntimes), context.Settings.Allowed);
        IReadOnlyList<UnitOffender> offenders = scan.Run();
        var list = new JsonArray();
        foreach (UnitOffender o in offenders)
        {
            list.Add(new JsonObject
            {
                ["unit"] = o.Unit,
                ["scope"] = o.Scope,
                ["file"] = o.File,
                ["directive"] = o.Directive,
                ["command"] = o.Command,
                ["runtime"] = o.Runtime,
                ["via"] = o.Via,
            });
        }

        var details = new JsonObject { ["offenders"] = list, ["units_scanned"] = scan.UnitsScanned, ["commands_scanned"] = scan.CommandsScanned };
        if (offenders.Count == 0)
        {
            return Ok($"{scan.CommandsScanned} commands in {scan.UnitsScanned} units: no interpreter") with { Details = details };
        }

        string named = string.Join(", ", offenders.Select(o => $"{o.Unit} {o.Directive} ({o.Runtime})").Distinct().Take(3));
        string more = offenders.Count > 3 ? $" and {offenders.Count - 3} more" : "";
        return Fail($"{offenders.Count} command(s) reach an interpreter: {named}{more}",
            "serve through compiled binaries only: replace or disable these units, or list a deliberate exception under doctor.allowed in /etc/halo/halo.yaml")
            with { Details = details };
    }
}
