using Halo.Installer.Doctor.Runtime;

namespace Halo.Installer.Doctor.Checks;

/// <summary>`service.watchdog`: halo-server.service is installed as Type=notify with WatchdogSec set (read from the unit files).</summary>
public sealed class ServiceUnitCheck : FileCheck
{
    public const string ServiceName = "halo-server.service";

    public override string Id => "service.watchdog";

    public override string Title => "halo-server unit";

    protected override CheckResult Run(DoctorContext context)
    {
        UnitDefinition? unit = new SystemdUnits(context.Root).Load(SystemdUnits.SystemSearchPath, "system")
            .FirstOrDefault(u => u.Name == ServiceName && u.MainFile is not null);
        if (unit is null)
        {
            return Fail($"{ServiceName} is not installed", "sudo halo provision (installs and enables the Halo units)");
        }

        string type = unit.Last("Service", "Type")?.Value ?? "simple";
        string watchdog = unit.Last("Service", "WatchdogSec")?.Value ?? "";
        if (watchdog.Length == 0 || watchdog is "0" or "0s" or "infinity")
        {
            return Warn($"{unit.MainFile}: no WatchdogSec, so a wedged engine is never restarted",
                $"add WatchdogSec=30s under [Service] (sudo systemctl edit {ServiceName})");
        }

        if (type != "notify" && type != "notify-reload")
        {
            return Warn($"{unit.MainFile}: Type={type}; the daemon reports readiness and watchdog pings only with Type=notify",
                $"set Type=notify under [Service] (sudo systemctl edit {ServiceName})");
        }

        return Ok($"{unit.MainFile}: Type={type}, WatchdogSec={watchdog}");
    }
}
