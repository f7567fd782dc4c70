using Halo.Installer.Doctor;
using Halo.Installer.Doctor.Runtime;

namespace Halo.Installer.Provision.Steps;

/// <summary>
/// The Halo units in /etc/systemd/system and enabled. A unit already there is left as it is (install-strixhalo.sh
/// renders them for its --prefix; local changes belong in drop-ins). Enabling is what `systemctl enable` does:
/// a link in each `[Install]` WantedBy=/RequiredBy= target's .wants/.requires directory, plus the Also= units;
/// on the live system systemctl itself does it.
/// </summary>
public sealed class UnitsStep : IProvisionStep
{
    public const string UnitDir = "/etc/systemd/system";
    public const string ShippedLibDir = "/usr/lib/halo/";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(1);

    /// <summary>Units provision enables (the doctor service is started by its timer, the server by its socket or at boot).</summary>
    public static readonly string[] Enabled = ["halo-server.service", "halo-server.socket", "halo-doctor.timer"];

    public Task<ProvisionStep> PlanAsync(ProvisionContext context, CancellationToken cancellationToken)
    {
        var step = new ProvisionStep("units", "systemd units installed and enabled");
        IReadOnlyDictionary<string, string> shipped = context.Units.Units;
        if (shipped.Count == 0)
        {
            throw new ProvisionException("this build of halo carries no unit files (the repository's systemd/ folder was empty at build time)");
        }

        string libDir = InstalledLibDir();
        bool wroteAny = false;
        foreach ((string name, string text) in shipped)
        {
            string path = $"{UnitDir}/{name}";
            if (context.Root.Exists(path) || context.Root.Exists($"/usr/lib/systemd/system/{name}"))
            {
                continue;
            }

            string rendered = text.Replace(ShippedLibDir, libDir, StringComparison.Ordinal);
            step.Actions.Add(new ProvisionAction(ActionKind.Write, $"{path}" + (libDir != ShippedLibDir ? $" (programs in {libDir})" : ""), _ =>
            {
                context.WriteFile(path, rendered, (UnixFileMode)0b110_100_100);
                return Task.CompletedTask;
            }));
            wroteAny = true;
        }

        if (wroteAny && context.Live)
        {
            step.Actions.Add(new ProvisionAction(ActionKind.Run, "systemctl daemon-reload",
                ct => ProvisionContext.RunAsync("systemctl", ["daemon-reload"], CommandTimeout, ct), LiveOnly: true));
        }

        var links = new List<(string Link, string Target)>();
        foreach (string name in Enabled.Where(shipped.ContainsKey))
        {
            links.AddRange(EnableLinks(name, shipped));
        }

        var missingLinks = links.Distinct().Where(l => !context.Root.IsSymlink(l.Link)).ToList();
        if (missingLinks.Count > 0)
        {
            if (context.Live)
            {
                string[] arguments = ["enable", .. Enabled.Where(shipped.ContainsKey)];
                step.Actions.Add(new ProvisionAction(ActionKind.Run, $"systemctl {string.Join(' ', arguments)}",
                    ct => ProvisionContext.RunAsync("systemctl", arguments, CommandTimeout, ct), LiveOnly: true));
            }
            else
            {
                foreach ((string link, string target) in missingLinks)
                {
                    step.Actions.Add(new ProvisionAction(ActionKind.Link, $"{link} -> {target}", _ =>
                    {
                        string host = context.Root.Host(Path.GetDirectoryName(link)!);
                        Directory.CreateDirectory(host);
                        File.CreateSymbolicLink(Path.Combine(host, Path.GetFileName(link)), target);
                        return Task.CompletedTask;
                    }));
                }
            }
        }

        if (step.Actions.Count == 0)
        {
            step.AlreadyDone = $"{string.Join(", ", shipped.Keys)} installed; {string.Join(", ", Enabled.Where(shipped.ContainsKey))} enabled";
        }

        return Task.FromResult(step);
    }

    /// <summary>The links `systemctl enable NAME` makes, from the shipped [Install] section (Also= followed).</summary>
    public static IEnumerable<(string Link, string Target)> EnableLinks(string name, IReadOnlyDictionary<string, string> units)
    {
        if (!units.TryGetValue(name, out string? text))
        {
            yield break;
        }

        foreach (UnitSetting setting in SystemdUnits.Parse(text, name))
        {
            if (setting.Section != "Install")
            {
                continue;
            }

            string kind = setting.Key switch { "WantedBy" => ".wants", "RequiredBy" => ".requires", "UpheldBy" => ".upholds", _ => "" };
            foreach (string target in setting.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (kind.Length > 0)
                {
                    yield return ($"{UnitDir}/{target}{kind}/{name}", $"{UnitDir}/{name}");
                }
            }

            if (setting.Key == "Also")
            {
                foreach (string also in setting.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(a => a != name))
                {
                    foreach ((string Link, string Target) link in EnableLinks(also, units))
                    {
                        yield return link;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Where this `halo` lives when it runs as the installed program beside halo-server (a --prefix install);
    /// otherwise (`dotnet halo.dll`, tests) the /usr/lib/halo/ the units ship with.
    /// </summary>
    private static string InstalledLibDir()
    {
        string? process = Environment.ProcessPath;
        if (process is null || Path.GetFileName(process) != "halo" || !File.Exists(Path.Combine(Path.GetDirectoryName(process)!, "halo-server")))
        {
            return ShippedLibDir;
        }

        return Path.GetDirectoryName(process)! + "/";
    }
}
