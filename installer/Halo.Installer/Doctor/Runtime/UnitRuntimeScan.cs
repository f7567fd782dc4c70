namespace Halo.Installer.Doctor.Runtime;

/// <summary>A unit command that reaches a forbidden runtime (the `offenders` entries of `units.forbidden-runtime`).</summary>
/// <param name="Runtime">The interpreter's executable name as found (`python3.11`).</param>
/// <param name="Via">How the command reaches it: programs, `#!` lines and `sh -c` steps in order.</param>
public sealed record UnitOffender(string Unit, string Scope, string File, string Directive, string Command, string Runtime, string Via);

/// <summary>Applies the runtime rule (DESIGN.md section 6) to every Exec*= command of every unit and drop-in.</summary>
public sealed class UnitRuntimeScan
{
    public static readonly IReadOnlyList<string> ExecDirectives =
    [
        "ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPre", "ExecStopPost",
    ];

    /// <summary>systemd's fixed search path for Exec*= binaries given without a directory.</summary>
    public static readonly IReadOnlyList<string> DefaultSearchPath =
        ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    private readonly SystemRoot _root;
    private readonly CommandResolver _resolver;
    private readonly HashSet<string> _allowedUnits;

    public UnitRuntimeScan(SystemRoot root, RuntimeCatalog catalog, IReadOnlyList<string> allowed)
    {
        _root = root;
        _resolver = new CommandResolver(root, catalog, allowed.Where(a => a.StartsWith('/')));
        _allowedUnits = new HashSet<string>(allowed.Where(a => !a.StartsWith('/')), StringComparer.Ordinal);
    }

    public int UnitsScanned { get; private set; }

    public int CommandsScanned { get; private set; }

    public IReadOnlyList<UnitOffender> Run() => Run(new SystemdUnits(_root).LoadAll());

    public IReadOnlyList<UnitOffender> Run(IReadOnlyList<UnitDefinition> units)
    {
        var offenders = new List<UnitOffender>();
        var reported = new HashSet<(string, string, string, string)>();
        foreach (UnitDefinition unit in units)
        {
            if (_allowedUnits.Contains(unit.Name))
            {
                continue;
            }

            UnitsScanned++;
            Dictionary<string, string> environment = EnvironmentOf(unit);
            IReadOnlyList<string> searchPath = SearchPathOf(unit);
            IReadOnlyList<string> shellPath = environment.TryGetValue("PATH", out string? path)
                ? path.Split(':', StringSplitOptions.RemoveEmptyEntries)
                : DefaultSearchPath;
            foreach (string directive in ExecDirectives)
            {
                foreach (UnitSetting setting in unit.List(directive))
                {
                    foreach (ExecCommand command in ExecCommandLine.Parse(setting.Value, environment))
                    {
                        CommandsScanned++;
                        IReadOnlyList<RuntimeHit> hits = command.ViaShell
                            ? _resolver.InspectShell(string.Join(' ', command.Argv), shellPath, environment)
                            : InspectExec(command, searchPath, shellPath, environment);
                        foreach (RuntimeHit hit in hits)
                        {
                            if (reported.Add((setting.File, directive, setting.Value, hit.Executable)))
                            {
                                offenders.Add(new UnitOffender(unit.Name, unit.Scope, setting.File, directive, setting.Value, hit.Executable, hit.Path));
                            }
                        }
                    }
                }
            }
        }

        return offenders;
    }

    /// <summary>systemd finds the binary itself (fixed path); what it starts then sees the unit's PATH.</summary>
    private IReadOnlyList<RuntimeHit> InspectExec(ExecCommand command, IReadOnlyList<string> searchPath, IReadOnlyList<string> shellPath, IReadOnlyDictionary<string, string> environment)
    {
        var argv = new List<string>(command.Argv);
        if (!argv[0].StartsWith('/'))
        {
            string? found = _root.Which(argv[0], searchPath);
            if (found is not null)
            {
                argv[0] = found;
            }
        }

        return _resolver.Inspect(argv, shellPath, environment);
    }

    private static IReadOnlyList<string> SearchPathOf(UnitDefinition unit)
    {
        UnitSetting? execSearchPath = unit.Last("Service", "ExecSearchPath");
        return execSearchPath is { Value.Length: > 0 }
            ? execSearchPath.Value.Split(':', StringSplitOptions.RemoveEmptyEntries)
            : DefaultSearchPath;
    }

    /// <summary>Environment= then EnvironmentFile= (which wins), as the service would see them.</summary>
    private Dictionary<string, string> EnvironmentOf(UnitDefinition unit)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (UnitSetting setting in unit.List("Environment"))
        {
            foreach (ExecCommand words in ExecCommandLine.Parse(setting.Value, environment))
            {
                foreach (string word in words.Argv)
                {
                    AddAssignment(environment, word);
                }
            }
        }

        foreach (UnitSetting setting in unit.List("EnvironmentFile"))
        {
            string file = setting.Value.TrimStart('-');
            foreach (string line in (_root.ReadText(file) ?? "").Split('\n'))
            {
                string trimmed = line.Trim();
                if (trimmed.Length > 0 && trimmed[0] is not '#' and not ';')
                {
                    AddAssignment(environment, trimmed.StartsWith("export ", StringComparison.Ordinal) ? trimmed[7..].Trim() : trimmed);
                }
            }
        }

        return environment;
    }

    private static void AddAssignment(Dictionary<string, string> environment, string assignment)
    {
        int eq = assignment.IndexOf('=');
        if (eq > 0)
        {
            environment[assignment[..eq].Trim()] = assignment[(eq + 1)..].Trim().Trim('"', '\'');
        }
    }
}
