using Halo.Installer.Doctor;
using Halo.Installer.Doctor.Checks;

namespace Halo.Installer.Provision.Steps;

/// <summary>
/// The first model, pulled and verified by `halo models pull` (the same CLI, as a child process, so the
/// downloader's resume, checksums and manifest are the ones users get), then handed to the halo user.
/// Skipped when a verified model is already there, and under --root (a pull needs the network).
/// </summary>
public sealed class ModelStep : IProvisionStep
{
    private static readonly TimeSpan PullTimeout = TimeSpan.FromHours(2);

    public async Task<ProvisionStep> PlanAsync(ProvisionContext context, CancellationToken cancellationToken)
    {
        var step = new ProvisionStep("model", "first model pulled and verified");
        string modelsDir = DoctorSettings.Load(context.Root).ModelsDir;
        if (await ModelCheck.FirstVerifiedAsync(context.Root, modelsDir, cancellationToken) is { } verified)
        {
            step.AlreadyDone = $"{verified} in {modelsDir} verified";
            return step;
        }

        string model = context.Options.Model;
        (string program, string[] prefix) = SelfCommand();
        string[] arguments = [.. prefix, "models", "pull", model, "--dir", modelsDir];
        step.Actions.Add(new ProvisionAction(ActionKind.Run, $"halo models pull {model} --dir {modelsDir}",
            ct => ProvisionContext.RunAsync(program, arguments, PullTimeout, ct), LiveOnly: true));
        step.Actions.Add(new ProvisionAction(ActionKind.Run, $"chown -R {HaloUserCheck.UserName}:{HaloUserCheck.UserName} {modelsDir}",
            ct => ProvisionContext.RunAsync("chown", ["-R", $"{HaloUserCheck.UserName}:{HaloUserCheck.UserName}", modelsDir], TimeSpan.FromMinutes(1), ct), LiveOnly: true));
        if (!context.Live)
        {
            step.Notes.Add($"under --root no model is pulled: run `halo models pull {model}` on the machine, or copy a model with its manifest.json into {modelsDir}");
        }

        return step;
    }

    /// <summary>How to start this same CLI again: the apphost, or `dotnet halo.dll`.</summary>
    public static (string Program, string[] Prefix) SelfCommand()
    {
        string? process = Environment.ProcessPath;
        string dll = Path.Combine(AppContext.BaseDirectory, "halo.dll");
        return process is not null && Path.GetFileNameWithoutExtension(process) == "dotnet" ? (process, [dll]) : (process ?? "halo", []);
    }
}
