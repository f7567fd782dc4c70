namespace Halo.Installer.Doctor.Checks;

/// <summary>`os.kernel`: gfx1151 (Strix Halo) compute needs Linux 6.18.4 or newer with ROCm 7.2.</summary>
public sealed class KernelCheck : FileCheck
{
    public override string Id => "os.kernel";

    public override string Title => "Linux kernel";

    protected override CheckResult Run(DoctorContext context)
    {
        string? release = context.Machine.KernelRelease;
        Version? version = Machine.ParseVersion(release);
        if (version is null)
        {
            return Warn("kernel version unreadable (/proc/sys/kernel/osrelease, /proc/version)", "check that /proc is mounted");
        }

        if (version >= Machine.MinimumKernel)
        {
            return Ok($"Linux {release} (>= {Machine.MinimumKernel} for gfx1151)");
        }

        string upgrade = "upgrade to Linux >= 6.18.4 (Ubuntu: a mainline or HWE kernel; Fedora: dnf upgrade kernel; Arch: pacman -Syu) and reboot";
        return context.Machine.HasStrixHalo
            ? Fail($"Linux {release} is older than {Machine.MinimumKernel}, which gfx1151 needs for stable compute", upgrade)
            : Ok($"Linux {release} (no Strix Halo GPU here; GPU serving on one would need >= {Machine.MinimumKernel})");
    }
}
