using CliWrap;
using CliWrap.Buffered;

namespace Halo.Installer.Doctor.Checks;

/// <summary>
/// `permissions`: /etc/halo and its config are not writable by everyone (the config names the model and the
/// API keys), /var/lib/halo is not writable by everyone; on the live system also that the halo user owns
/// /var/lib/halo and root owns /etc/halo. Under --root the files belong to whoever built the fake machine,
/// so only the mode bits are checked.
/// </summary>
public sealed class PermissionsCheck : DoctorCheck
{
    public const string EtcDir = "/etc/halo";
    public const string StateDir = "/var/lib/halo";

    public override string Id => "permissions";

    public override string Title => "Permissions";

    public override async Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken)
    {
        SystemRoot root = context.Root;
        var missing = new[] { EtcDir, StateDir }.Where(d => !root.DirectoryExists(d)).ToList();
        if (missing.Count > 0)
        {
            return Fail($"{string.Join(" and ", missing)} missing", "sudo halo provision");
        }

        var problems = new List<string>();
        var fixes = new List<string>();
        foreach (string path in (string[])[EtcDir, DoctorSettings.ConfigPath, StateDir, context.Settings.ModelsDir])
        {
            if (!root.Exists(path))
            {
                continue;
            }

            UnixFileMode mode = root.Mode(path);
            if ((mode & UnixFileMode.OtherWrite) != 0)
            {
                problems.Add($"{path} is world-writable ({Octal(mode)})");
                fixes.Add($"chmod o-w {path}");
            }
        }

        if (context.Settings.HasApiKeys && (root.Mode(DoctorSettings.ConfigPath) & UnixFileMode.OtherRead) != 0)
        {
            problems.Add($"{DoctorSettings.ConfigPath} lists API key hashes (auth.api_keys) and is world-readable");
            fixes.Add($"chmod 640 {DoctorSettings.ConfigPath} && chgrp halo {DoctorSettings.ConfigPath}");
        }

        string owners = "modes only (owners are not checked under --root)";
        if (context.LiveProbes)
        {
            owners = "modes and owners";
            foreach ((string path, string owner) in new[] { (EtcDir, "root"), (StateDir, "halo"), (context.Settings.ModelsDir, "halo") })
            {
                string? actual = await OwnerAsync(path, context.ProbeTimeout, cancellationToken);
                if (actual is not null && actual != owner)
                {
                    problems.Add($"{path} is owned by {actual}, not {owner}");
                    fixes.Add($"chown -R {owner}:{owner} {path}");
                }
            }
        }

        return problems.Count == 0
            ? Ok($"{EtcDir}, {StateDir}: {owners} fine")
            : Fail(string.Join("; ", problems), "sudo " + string.Join(" && sudo ", fixes));
    }

    private static string Octal(UnixFileMode mode) => System.Convert.ToString((int)mode & 0xfff, 8).PadLeft(4, '0');

    private static async Task<string?> OwnerAsync(string path, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(path) && !File.Exists(path))
        {
            return null;
        }

        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            BufferedCommandResult result = await CliWrap.Cli.Wrap("stat").WithArguments(["-c", "%U", path])
                .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(cts.Token);
            return result.ExitCode == 0 ? result.StandardOutput.Trim() : null;
        }
        catch (Exception e) when (e is OperationCanceledException or System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
