namespace Halo.Installer.Provision;

/// <summary>What one action does, as printed in the plan.</summary>
public enum ActionKind
{
    /// <summary>Run an external command (CliWrap, with a timeout).</summary>
    Run,

    /// <summary>Create or replace a file.</summary>
    Write,

    /// <summary>Create a directory / set its mode.</summary>
    Directory,

    /// <summary>Create a symlink (enabling a unit).</summary>
    Link,

    /// <summary>Change an existing file in place (passwd, group, grub).</summary>
    Edit,

    /// <summary>Download a file.</summary>
    Fetch,
}

/// <summary>
/// One change. <see cref="LiveOnly"/> actions (package installs, systemctl, chown) only make sense on the
/// running system: under --root they are printed and skipped, never run against the host.
/// </summary>
public sealed record ProvisionAction(ActionKind Kind, string Description, Func<CancellationToken, Task> Apply, bool LiveOnly = false);

/// <summary>A step of the plan: its changes, or why nothing is needed, plus notes for the operator.</summary>
public sealed record ProvisionStep(string Id, string Title)
{
    public List<ProvisionAction> Actions { get; } = [];

    public List<string> Notes { get; } = [];

    /// <summary>Set when the step is already satisfied (shown as "ok").</summary>
    public string? AlreadyDone { get; set; }

    /// <summary>A step that needs a yes from the operator before its actions run (the kernel command line).</summary>
    public string? NeedsConsent { get; set; }
}
