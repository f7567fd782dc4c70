using Halo.Installer.Doctor;
using Halo.Installer.Doctor.Checks;

namespace Halo.Installer.Provision.Steps;

/// <summary>
/// /etc/halo (0755, root), /var/lib/halo and its models directory (0750, owned by halo) and the default
/// /etc/halo/halo.yaml (0640, group halo) when there is none; an existing config is never touched.
/// </summary>
public sealed class DirectoriesStep : IProvisionStep
{
    private const UnixFileMode EtcMode = (UnixFileMode)0b111_101_101;
    private const UnixFileMode StateMode = (UnixFileMode)0b111_101_000;
    private const UnixFileMode ConfigMode = (UnixFileMode)0b110_100_000;
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(1);

    /// <summary>The config provision writes: the repository's documented config/halo.yaml when built in, else comments only (all defaults).</summary>
    public static string DefaultConfig()
    {
        using Stream? stream = typeof(DirectoriesStep).Assembly.GetManifestResourceStream("config/halo.yaml");
        if (stream is not null)
        {
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }

        return "# /etc/halo/halo.yaml: Halo daemon configuration (DESIGN.md section 5), written by halo provision.\n" +
               "# Every key has a default; this file only needs what differs. Examples:\n" +
               "# server:\n#   listen: [\"127.0.0.1:8180\"]\n# model:\n#   models_dir: /var/lib/halo/models\n" +
               "# doctor:\n#   forbidden_runtimes: [python, node, ruby, perl, php, java, lua]\n#   allowed: []\n#   interpreter_rss_mb: 100\n";
    }

    public Task<ProvisionStep> PlanAsync(ProvisionContext context, CancellationToken cancellationToken)
    {
        var step = new ProvisionStep("directories", "/etc/halo, /var/lib/halo and the config file");
        SystemRoot root = context.Root;
        string models = DoctorSettings.Load(root).ModelsDir;
        foreach ((string dir, UnixFileMode mode, bool haloOwned) in new[] { (PermissionsCheck.EtcDir, EtcMode, false), (PermissionsCheck.StateDir, StateMode, true), (models, StateMode, true) })
        {
            if (!root.DirectoryExists(dir) || (root.Mode(dir) & (UnixFileMode)0xfff) != mode)
            {
                step.Actions.Add(new ProvisionAction(ActionKind.Directory, $"{dir} mode {Octal(mode)}", _ =>
                {
                    string host = root.Host(dir);
                    Directory.CreateDirectory(host);
                    SystemRoot.SetModeOfHostPath(host, mode);
                    return Task.CompletedTask;
                }));
                if (haloOwned && context.Live)
                {
                    step.Actions.Add(Chown($"{HaloUserCheck.UserName}:{HaloUserCheck.UserName}", dir));
                }
            }
        }

        if (!root.Exists(DoctorSettings.ConfigPath))
        {
            string config = DefaultConfig();
            step.Actions.Add(new ProvisionAction(ActionKind.Write, $"{DoctorSettings.ConfigPath} ({config.Length} bytes, mode {Octal(ConfigMode)})", _ =>
            {
                context.WriteFile(DoctorSettings.ConfigPath, config, ConfigMode);
                return Task.CompletedTask;
            }));
            if (context.Live)
            {
                step.Actions.Add(Chown($"root:{HaloUserCheck.UserName}", DoctorSettings.ConfigPath));
            }
        }

        if (step.Actions.Count == 0)
        {
            step.AlreadyDone = $"{PermissionsCheck.EtcDir}, {PermissionsCheck.StateDir}, {models} and {DoctorSettings.ConfigPath} in place";
        }

        return Task.FromResult(step);
    }

    private static ProvisionAction Chown(string owner, string path) =>
        new(ActionKind.Run, $"chown {owner} {path}", ct => ProvisionContext.RunAsync("chown", [owner, path], CommandTimeout, ct), LiveOnly: true);

    private static string Octal(UnixFileMode mode) => System.Convert.ToString((int)mode, 8).PadLeft(4, '0');
}
