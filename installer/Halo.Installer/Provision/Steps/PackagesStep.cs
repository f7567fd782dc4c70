using Halo.Installer.Doctor;

namespace Halo.Installer.Provision.Steps;

/// <summary>
/// ROCm's OpenCL runtime and rocminfo for the distribution: from AMD's apt repository on Ubuntu/Debian
/// (distribution ROCm there is older than 7.2), from the distribution itself on Fedora and Arch.
/// </summary>
public sealed class PackagesStep : IProvisionStep
{
    public const string RocmRelease = "7.2";
    public const string AptList = "/etc/apt/sources.list.d/rocm.list";
    public const string AptPin = "/etc/apt/preferences.d/rocm-pin-600";
    public const string AptKey = "/etc/apt/keyrings/rocm.asc";
    public const string AptKeyUrl = "https://repo.radeon.com/rocm/rocm.gpg.key";
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(30);

    /// <summary>Package names per family: what ILGPU's OpenCL backend and the doctor's rocminfo check need.</summary>
    public static IReadOnlyList<string> PackagesFor(DistroFamily family) => family switch
    {
        DistroFamily.Debian => ["rocm-opencl-runtime", "rocminfo"],
        DistroFamily.Fedora => ["rocm-opencl", "rocminfo"],
        DistroFamily.Arch => ["rocm-opencl-runtime", "rocminfo"],
        _ => [],
    };

    /// <summary>The package manager command that installs <paramref name="packages"/>.</summary>
    public static (string Program, string[] Arguments) InstallCommand(DistroFamily family, IReadOnlyList<string> packages) => family switch
    {
        DistroFamily.Debian => ("apt-get", ["install", "-y", "--no-install-recommends", .. packages]),
        DistroFamily.Fedora => ("dnf", ["install", "-y", .. packages]),
        DistroFamily.Arch => ("pacman", ["-S", "--needed", "--noconfirm", .. packages]),
        _ => throw new ProvisionException("no package manager for this distribution"),
    };

    /// <summary>AMD publishes its apt repository per Ubuntu release; Debian uses the matching Ubuntu one.</summary>
    public static string AptSuite(OsRelease os) => os.Id switch
    {
        "debian" => os.Codename switch
        {
            "bookworm" => "jammy",
            _ => "noble",
        },
        _ => os.Codename.Length > 0 ? os.Codename : "noble",
    };

    public async Task<ProvisionStep> PlanAsync(ProvisionContext context, CancellationToken cancellationToken)
    {
        var step = new ProvisionStep("packages", "ROCm runtime packages");
        OsRelease? os = context.Os;
        if (os is null || os.Family == DistroFamily.Unknown)
        {
            step.AlreadyDone = $"skipped: {(os is null ? "no /etc/os-release" : os.PrettyName)} is not Ubuntu/Debian, Fedora or Arch; install ROCm >= {RocmRelease} by hand";
            return step;
        }

        if (!context.Machine.HasAmdGpu)
        {
            step.AlreadyDone = "skipped: no AMD GPU here, Halo serves on the CPU backend (run provision again once the GPU is visible)";
            return step;
        }

        var missing = new List<string>();
        foreach (string package in PackagesFor(os.Family))
        {
            if (await context.Packages.VersionAsync(package, cancellationToken) is null)
            {
                missing.Add(package);
            }
        }

        if (missing.Count == 0)
        {
            step.AlreadyDone = $"{string.Join(", ", PackagesFor(os.Family))} installed";
            return step;
        }

        if (os.Family == DistroFamily.Debian)
        {
            AddAptRepository(context, step, os);
        }

        (string program, string[] arguments) = InstallCommand(os.Family, missing);
        step.Actions.Add(new ProvisionAction(ActionKind.Run, ProvisionContext.Describe(program, arguments),
            ct => ProvisionContext.RunAsync(program, arguments, InstallTimeout, ct), LiveOnly: true));
        return step;
    }

    private static void AddAptRepository(ProvisionContext context, ProvisionStep step, OsRelease os)
    {
        string suite = AptSuite(os);
        string list = $"deb [arch=amd64 signed-by={AptKey}] https://repo.radeon.com/rocm/apt/{RocmRelease} {suite} main\n";
        const string pin = "Package: *\nPin: release o=repo.radeon.com\nPin-Priority: 600\n";
        if (!context.Root.FileExists(AptKey))
        {
            step.Actions.Add(new ProvisionAction(ActionKind.Fetch, $"{AptKeyUrl} -> {AptKey}", async ct =>
            {
                using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
                string key = await http.GetStringAsync(AptKeyUrl, ct);
                if (!key.Contains("BEGIN PGP PUBLIC KEY BLOCK", StringComparison.Ordinal))
                {
                    throw new ProvisionException($"{AptKeyUrl} did not return a PGP key");
                }

                context.WriteFile(AptKey, key, (UnixFileMode)0b110_100_100);
            }, LiveOnly: true));
        }

        if (context.Root.ReadText(AptList) != list)
        {
            step.Actions.Add(new ProvisionAction(ActionKind.Write, $"{AptList}: {list.Trim()}", _ =>
            {
                context.WriteFile(AptList, list, (UnixFileMode)0b110_100_100);
                return Task.CompletedTask;
            }));
        }

        if (context.Root.ReadText(AptPin) != pin)
        {
            step.Actions.Add(new ProvisionAction(ActionKind.Write, $"{AptPin}: prefer repo.radeon.com (priority 600)", _ =>
            {
                context.WriteFile(AptPin, pin, (UnixFileMode)0b110_100_100);
                return Task.CompletedTask;
            }));
        }

        step.Actions.Add(new ProvisionAction(ActionKind.Run, "apt-get update",
            ct => ProvisionContext.RunAsync("apt-get", ["update"], InstallTimeout, ct), LiveOnly: true));
    }
}
