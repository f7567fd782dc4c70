using System.Text.Json.Nodes;

namespace Halo.Installer.Doctor;

public enum CheckStatus
{
    Ok,
    Warn,
    Fail,
    Skip,
}

/// <summary>
/// The outcome of one check: a stable id (`gpu.present`), a status, a one-line finding and a concrete fix
/// hint (empty when there is nothing to do). <see cref="Details"/> carries extra JSON fields, such as
/// `offenders` on the runtime checks.
/// </summary>
public sealed record CheckResult(string Id, string Title, CheckStatus Status, string Finding, string Hint)
{
    public JsonObject? Details { get; init; }

    public static CheckResult Ok(string id, string title, string finding) => new(id, title, CheckStatus.Ok, finding, "");
}
