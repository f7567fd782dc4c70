namespace Halo.Installer.Doctor.Checks;

/// <summary>`os.release`: a distribution provision knows (Ubuntu/Debian, Fedora, Arch and their derivatives).</summary>
public sealed class OsReleaseCheck : FileCheck
{
    public override string Id => "os.release";

    public override string Title => "Operating system";

    protected override CheckResult Run(DoctorContext context)
    {
        OsRelease? os = OsRelease.Read(context.Root);
        if (os is null)
        {
            return Warn("no /etc/os-release: distribution unknown", "install a supported distribution (Ubuntu 24.04+, Debian 13+, Fedora 42+, Arch)");
        }

        return os.Family == DistroFamily.Unknown
            ? Warn($"{os.PrettyName}: not a distribution halo provision knows", "provision supports Ubuntu/Debian, Fedora and Arch; install ROCm 7.2+ by hand elsewhere")
            : Ok($"{os.PrettyName} ({os.Family.ToString().ToLowerInvariant()} family)");
    }
}
