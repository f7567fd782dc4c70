using System.Text.Json.Nodes;
using Halo.Installer.Models;

namespace Halo.Installer.Doctor.Checks;

/// <summary>
/// `models.present`: at least one model under the models directory whose files match its manifest.json in
/// size and sha256 (DESIGN.md section 8). It asks the same <see cref="ModelStore"/> that `halo models list`
/// and `halo models verify` use, so the three always agree.
/// </summary>
public sealed class ModelCheck : DoctorCheck
{
    public override string Id => "models.present";

    public override string Title => "Model";

    public override async Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken)
    {
        string dir = context.Settings.ModelsDir;
        const string pull = "halo models pull " + Provision.ProvisionOptions.DefaultModel + " (as the halo user or with sudo)";
        if (!context.Root.DirectoryExists(dir))
        {
            return Fail($"no models directory {dir}", "sudo halo provision, then " + pull);
        }

        var verified = new List<string>();
        var problems = new List<string>();
        var unverified = new List<string>();
        var models = new JsonArray();
        var store = new ModelStore(context.Root.Host(dir));
        foreach (InstalledModel model in store.List())
        {
            string? problem = await ProblemOfAsync(store, model, cancellationToken);
            if (problem is not null && !context.Root.IsLive)
            {
                problem = problem.Replace(context.Root.HostRoot, "", StringComparison.Ordinal);
            }

            models.Add(new JsonObject { ["name"] = model.Name, ["status"] = model.Status.ToString().ToLowerInvariant(), ["verified"] = problem is null, ["problem"] = problem });
            if (model.Status == ModelStatus.Incomplete)
            {
                unverified.Add($"{model.Name} ({model.Problem})");
            }
            else if (problem is null)
            {
                verified.Add(model.Status == ModelStatus.Unpinned ? model.Name + " (unpinned: checked against the digest computed at pull)" : model.Name);
            }
            else
            {
                problems.Add($"{model.Name}: {problem}");
            }
        }

        var details = new JsonObject { ["models"] = models };
        if (problems.Count > 0)
        {
            return Fail(string.Join("; ", problems), "halo models verify; re-pull a damaged model: halo models rm NAME && halo models pull NAME") with { Details = details };
        }

        if (verified.Count > 0)
        {
            string loose = unverified.Count > 0 ? $"; without a manifest: {string.Join(", ", unverified)}" : "";
            return Ok($"{string.Join(", ", verified)} verified (sha256){loose}") with { Details = details };
        }

        return unverified.Count > 0
            ? Warn($"{string.Join(", ", unverified)} in {dir}: no manifest.json, so not verifiable", "run the pull again to finish it: " + pull) with { Details = details }
            : Fail($"no model in {dir}", pull) with { Details = details };
    }

    /// <summary>Null when every file of the model matches its manifest (size and sha256); otherwise the first problem.</summary>
    public static async Task<string?> ProblemOfAsync(ModelStore store, InstalledModel model, CancellationToken cancellationToken)
    {
        if (model.Status is ModelStatus.Incomplete or ModelStatus.Damaged)
        {
            return model.Problem;
        }

        VerifyReport report = await store.VerifyAsync(model.Name, progress: null, cancellationToken);
        return report.Files.FirstOrDefault(f => f.Status != "ok")?.Detail;
    }

    /// <summary>The first model under <paramref name="modelsDir"/> that verifies, or null.</summary>
    public static async Task<string?> FirstVerifiedAsync(SystemRoot root, string modelsDir, CancellationToken cancellationToken)
    {
        var store = new ModelStore(root.Host(modelsDir));
        foreach (InstalledModel model in store.List())
        {
            if (model.Status is ModelStatus.Verified or ModelStatus.Unpinned && await ProblemOfAsync(store, model, cancellationToken) is null)
            {
                return model.Name;
            }
        }

        return null;
    }
}
