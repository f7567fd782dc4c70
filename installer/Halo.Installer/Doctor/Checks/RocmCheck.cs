namespace Halo.Installer.Doctor.Checks;

/// <summary>`rocm.version`: ROCm >= 7.2 (the first release with gfx1151 support Halo relies on).</summary>
public sealed class RocmCheck : DoctorCheck
{
    public override string Id => "rocm.version";

    public override string Title => "ROCm";

    public override async Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken)
    {
        (string? version, string? source) = await FindAsync(context, cancellationToken);
        bool needed = context.Machine.HasStrixHalo;
        if (version is null)
        {
            if (!context.Machine.HasAmdGpu)
            {
                return Skip("ROCm not installed; not needed without an AMD GPU (CPU backend)");
            }

            return needed
                ? Fail("ROCm is not installed (no /opt/rocm/.info/version, no rocm-core package)", "sudo halo provision (installs the ROCm 7.2 OpenCL runtime for this distribution)")
                : Warn("ROCm is not installed", "install ROCm >= 7.2 for GPU serving, or serve with --backend cpu");
        }

        Version? parsed = Machine.ParseVersion(version);
        if (parsed is not null && parsed >= Machine.MinimumRocm)
        {
            return Ok($"ROCm {version} ({source})");
        }

        string finding = $"ROCm {version} ({source}) is older than {Machine.MinimumRocm}";
        const string hint = "upgrade ROCm to >= 7.2: sudo halo provision, or your distribution's ROCm packages";
        return needed ? Fail(finding + ", which gfx1151 needs", hint) : Warn(finding, hint);
    }

    /// <summary>The version file AMD's packages write, then the package database (Fedora and Arch package ROCm themselves).</summary>
    public static async Task<(string? Version, string? Source)> FindAsync(DoctorContext context, CancellationToken cancellationToken)
    {
        string? best = null;
        string? bestSource = null;
        var candidates = new List<string> { "/opt/rocm/.info/version" };
        candidates.AddRange(context.Root.List("/opt", "rocm-*").Select(dir => dir + "/.info/version"));
        foreach (string file in candidates)
        {
            string? value = context.Root.ReadValue(file);
            if (value is { Length: > 0 } && (best is null || Machine.ParseVersion(value) > Machine.ParseVersion(best)))
            {
                best = value;
                bestSource = file;
            }
        }

        if (best is not null)
        {
            return (best, bestSource);
        }

        foreach (string package in (string[])["rocm-core", "rocm-opencl-runtime", "rocm-opencl"])
        {
            if (await context.Packages.VersionAsync(package, cancellationToken) is { } version)
            {
                return (version, "package " + package);
            }
        }

        return (null, null);
    }
}
