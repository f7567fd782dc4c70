namespace Halo.Installer.Doctor.Checks;

/// <summary>
/// `firmware.linux-firmware`: the installed linux-firmware is not a release known to break compute on
/// Strix Halo, and the gfx1151 firmware files are there.
/// </summary>
public sealed class FirmwareCheck : DoctorCheck
{
    /// <summary>
    /// Releases known bad for gfx1151, matched as a substring of the package version (distros embed the
    /// upstream date: "20251125-1.fc43", "20251125.abc-1"). Keep short and cite the report.
    /// </summary>
    public static readonly IReadOnlyList<(string Release, string Why)> KnownBad =
    [
        ("20251125", "its amdgpu MES firmware (0x83) hangs ROCm compute on gfx1151 with memory access faults " +
                     "(Framework community and kyuz0/amd-strix-halo-toolboxes#37); 20251111 and later releases work"),
    ];

    /// <summary>Package names that carry the amdgpu firmware, per distribution.</summary>
    public static readonly string[] Packages = ["linux-firmware", "linux-firmware-amdgpu", "amd-gpu-firmware", "firmware-amd-graphics"];

    public override string Id => "firmware.linux-firmware";

    public override string Title => "linux-firmware";

    public override async Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken)
    {
        if (!context.Machine.HasStrixHalo)
        {
            return Skip("no Strix Halo GPU: the gfx1151 firmware list does not apply");
        }

        var versions = new List<string>();
        foreach (string package in Packages)
        {
            if (await context.Packages.VersionAsync(package, cancellationToken) is { } version)
            {
                versions.Add($"{package} {version}");
                foreach ((string release, string why) in KnownBad)
                {
                    if (version.Contains(release, StringComparison.Ordinal))
                    {
                        return Fail($"{package} {version} is a known-bad release for gfx1151: {why}",
                            $"downgrade {package} to an earlier release (e.g. 20251111) or upgrade past {release}, then reboot");
                    }
                }
            }
        }

        bool hasGfx1151Firmware = context.Root.List("/usr/lib/firmware/amdgpu", "gc_11_5_1_*").Count > 0
                                  || context.Root.List("/lib/firmware/amdgpu", "gc_11_5_1_*").Count > 0;
        if (!hasGfx1151Firmware)
        {
            return Fail("no gfx1151 firmware (/usr/lib/firmware/amdgpu/gc_11_5_1_*)", "install or upgrade linux-firmware (amdgpu part), then reboot");
        }

        return versions.Count == 0
            ? Ok("gfx1151 firmware present (package version unknown here)")
            : Ok($"{string.Join(", ", versions)}; gfx1151 firmware present");
    }
}
