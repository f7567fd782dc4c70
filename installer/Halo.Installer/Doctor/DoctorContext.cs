namespace Halo.Installer.Doctor;

/// <summary>What every check may read: the root, the shared machine facts, the settings, and whether live probes apply.</summary>
public sealed class DoctorContext
{
    public DoctorContext(SystemRoot root, DoctorSettings? settings = null, bool? liveProbes = null)
    {
        Root = root;
        Machine = new Machine(root);
        Packages = new PackageDb(root);
        Settings = settings ?? DoctorSettings.Load(root);
        LiveProbes = liveProbes ?? root.IsLive;
    }

    public SystemRoot Root { get; }

    public Machine Machine { get; }

    public PackageDb Packages { get; }

    public DoctorSettings Settings { get; }

    /// <summary>
    /// True when checks may ask the running system (systemctl, HTTP to the daemon, rocminfo): on the live
    /// root. Under `--root` those would describe the host, not the fake machine, so they are skipped.
    /// </summary>
    public bool LiveProbes { get; }

    /// <summary>Timeout for every external command and HTTP probe.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>One doctor check. Ids are stable (tools and alerts key on them); titles are for people.</summary>
public interface IDoctorCheck
{
    string Id { get; }

    string Title { get; }

    Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken);
}

/// <summary>The common helpers of the checks: results carry the check's own id and title.</summary>
public abstract class DoctorCheck : IDoctorCheck
{
    public abstract string Id { get; }

    public abstract string Title { get; }

    public abstract Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken);

    protected CheckResult Ok(string finding) => new(Id, Title, CheckStatus.Ok, finding, "");

    protected CheckResult Warn(string finding, string hint) => new(Id, Title, CheckStatus.Warn, finding, hint);

    protected CheckResult Fail(string finding, string hint) => new(Id, Title, CheckStatus.Fail, finding, hint);

    protected CheckResult Skip(string finding) => new(Id, Title, CheckStatus.Skip, finding, "");
}

/// <summary>A check that needs no I/O beyond reading files under the root.</summary>
public abstract class FileCheck : DoctorCheck
{
    public sealed override Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken) =>
        Task.FromResult(Run(context));

    protected abstract CheckResult Run(DoctorContext context);
}
