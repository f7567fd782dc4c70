using System.Globalization;

namespace Halo.Installer.Doctor.Checks;

/// <summary>`disk.space`: room under /var/lib/halo for models (a 2B model is ~1.2 GB, its .h1b as much again) and logs.</summary>
public sealed class DiskSpaceCheck : FileCheck
{
    public const long WarnBelowBytes = 10L << 30;
    public const long FailBelowBytes = 2L << 30;

    public override string Id => "disk.space";

    public override string Title => "Disk space";

    protected override CheckResult Run(DoctorContext context)
    {
        // The nearest existing directory on the way to the models dir decides the file system.
        string path = context.Settings.ModelsDir;
        while (path.Length > 1 && !context.Root.DirectoryExists(path))
        {
            path = Path.GetDirectoryName(path) ?? "/";
        }

        long free;
        try
        {
            free = new DriveInfo(context.Root.Host(path)).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return Warn($"free space of {path} unreadable: {e.Message}", "check the file system with df -h");
        }

        string finding = $"{Gib(free)} GiB free on the file system of {path}";
        return free switch
        {
            < FailBelowBytes => Fail(finding, $"free space (models need several GiB): halo models rm, journalctl --vacuum-size=200M, or grow the disk"),
            < WarnBelowBytes => Warn(finding, "a second model or a conversion may not fit: free space or grow the disk"),
            _ => Ok(finding),
        };
    }

    private static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture);
}
