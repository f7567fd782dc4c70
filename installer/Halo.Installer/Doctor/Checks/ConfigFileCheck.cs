namespace Halo.Installer.Doctor.Checks;

/// <summary>`config.file`: /etc/halo/halo.yaml is there and is YAML (the daemon validates its keys at start).</summary>
public sealed class ConfigFileCheck : FileCheck
{
    public override string Id => "config.file";

    public override string Title => "Configuration";

    protected override CheckResult Run(DoctorContext context)
    {
        DoctorSettings settings = context.Settings;
        if (settings.Error is not null)
        {
            return Fail($"{DoctorSettings.ConfigPath}: {settings.Error}", $"fix the file, then check it with: halo serve --config {DoctorSettings.ConfigPath} (it validates at start)");
        }

        return settings.FileExists
            ? Ok($"{DoctorSettings.ConfigPath} (listen {settings.Listen}, models {settings.ModelsDir})")
            : Warn($"no {DoctorSettings.ConfigPath}: the daemon runs on its defaults (listen {settings.Listen})", "sudo halo provision writes the documented default");
    }
}
