namespace Halo.Installer.Doctor.Runtime;

/// <summary>
/// Programs that run another program given on their command line (`env`, `nice`, `sudo`, ...): how to find
/// the inner command in their arguments. Options that take a value are listed so that the value is not
/// mistaken for the command; `Positionals` counts the words before the command (`taskset MASK cmd`).
/// </summary>
public static class CommandWrappers
{
    private sealed record Spec(string[] ValueOptions, int Positionals, bool AcceptsAssignments = false);

    private static readonly Dictionary<string, Spec> Specs = new(StringComparer.Ordinal)
    {
        ["env"] = new(["-u", "--unset", "-C", "--chdir", "-a", "--argv0", "--default-signal", "--ignore-signal", "--block-signal"], 0, AcceptsAssignments: true),
        ["nice"] = new(["-n", "--adjustment"], 0),
        ["ionice"] = new(["-c", "--class", "-n", "--classdata"], 0),
        ["taskset"] = new([], 1),
        ["chrt"] = new(["-T", "--sched-runtime", "-P", "--sched-period", "-D", "--sched-deadline"], 1),
        ["numactl"] = new(["-i", "--interleave", "-N", "--cpunodebind", "-m", "--membind", "-C", "--physcpubind", "-p", "--preferred", "-P", "--preferred-many", "-w", "--weighted-interleave"], 0),
        ["stdbuf"] = new(["-i", "--input", "-o", "--output", "-e", "--error"], 0),
        ["timeout"] = new(["-s", "--signal", "-k", "--kill-after"], 1),
        ["setpriv"] = new(["--reuid", "--regid", "--ruid", "--rgid", "--euid", "--egid", "--groups", "--inh-caps", "--ambient-caps", "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label", "--apparmor-profile", "--landlock-access", "--landlock-rule", "--seccomp-filter"], 0),
        ["sudo"] = new(["-u", "--user", "-g", "--group", "-C", "--close-from", "-D", "--chdir", "-h", "--host", "-p", "--prompt", "-r", "--role", "-t", "--type", "-U", "--other-user", "-T", "--command-timeout", "-R", "--chroot"], 0, AcceptsAssignments: true),
        ["doas"] = new(["-u", "-C"], 0),
        ["exec"] = new(["-a"], 0),
        ["nohup"] = new([], 0),
        ["setsid"] = new([], 0),
        ["time"] = new(["-f", "--format", "-o", "--output"], 0),
        ["command"] = new([], 0),
        ["builtin"] = new([], 0),
        ["flock"] = new(["-w", "--timeout", "-E", "--conflict-exit-code"], 1),
        ["chroot"] = new(["--userspec", "--groups"], 1),
        ["prlimit"] = new(["-p", "--pid"], 0),
        ["unshare"] = new(["-S", "--setuid", "-G", "--setgroups", "-R", "--root", "-w", "--wd"], 0),
        ["nsenter"] = new(["-t", "--target", "-S", "--setuid", "-G", "--setgroups", "-r", "--root", "-w", "--wd"], 0),
        ["cgexec"] = new(["-g"], 0),
        ["catchsegv"] = new([], 0),
        ["dbus-run-session"] = new(["--config-file", "--dbus-daemon"], 0),
        ["systemd-inhibit"] = new(["--what", "--who", "--why", "--mode"], 0),
        ["systemd-cat"] = new(["-t", "--identifier", "-p", "--priority", "--stderr-priority", "--level-prefix", "--namespace"], 0),
        ["systemd-notify"] = new([], 0),
        ["xvfb-run"] = new(["-n", "--server-num", "-e", "--error-file", "-f", "--auth-file", "-s", "--server-args", "-p", "--xauth-protocol"], 0),
        ["valgrind"] = new([], 0),
        ["strace"] = new(["-e", "-o", "-p", "-s", "-u", "-E"], 0),
        ["ltrace"] = new(["-e", "-o", "-p", "-s", "-u"], 0),
        ["torsocks"] = new([], 0),
        ["proxychains"] = new(["-f"], 0),
        ["proxychains4"] = new(["-f"], 0),
        ["busybox"] = new([], 0),
        ["eatmydata"] = new([], 0),
        ["faketime"] = new([], 1),
        ["firejail"] = new([], 0),
        ["ld.so"] = new(["--library-path", "--preload", "--audit", "--argv0", "--glibc-hwcaps-prepend", "--glibc-hwcaps-mask"], 0),
        ["bwrap"] = new(["--bind", "--ro-bind", "--dev-bind", "--proc", "--dev", "--tmpfs", "--symlink", "--chdir", "--setenv", "--unsetenv", "--uid", "--gid", "--hostname", "--dir", "--file", "--bind-data", "--ro-bind-data", "--remount-ro", "--seccomp", "--info-fd", "--sync-fd", "--block-fd", "--lock-file", "--cap-add", "--cap-drop", "--perms", "--size", "--chmod", "--exec-label", "--file-label", "--userns", "--userns2", "--pidns", "--args", "--argv0"], 0),
    };

    /// <summary>Two-value bubblewrap options (`--bind SRC DEST`).</summary>
    private static readonly HashSet<string> TwoValueOptions =
        ["--bind", "--ro-bind", "--dev-bind", "--symlink", "--setenv", "--bind-data", "--ro-bind-data", "--file", "--chmod"];

    public static bool IsWrapper(string name) => Specs.ContainsKey(name) || name is "runuser" or "su" || IsDynamicLoader(name);

    /// <summary>The dynamic loader run as a program (`/lib64/ld-linux-x86-64.so.2 /usr/bin/python3`) starts the program after it.</summary>
    private static bool IsDynamicLoader(string name) => name.StartsWith("ld-linux", StringComparison.Ordinal) && name.Contains(".so", StringComparison.Ordinal);

    /// <summary>
    /// The command a wrapper runs. A shell command string (from `env -S`, `su -c`, `runuser -c`, `flock -c`)
    /// is returned in <paramref name="shellString"/> instead; null means the wrapper runs nothing we can see.
    /// </summary>
    public static IReadOnlyList<string>? Inner(string name, IReadOnlyList<string> argv, out string? shellString, out IReadOnlyList<string>? splitPrefix)
    {
        shellString = null;
        splitPrefix = null;
        if (name is "runuser" or "su")
        {
            return InnerOfSwitchUser(argv, out shellString);
        }

        Spec spec = Specs[IsDynamicLoader(name) ? "ld.so" : name];
        int i = 1;
        int positionals = spec.Positionals;
        while (i < argv.Count)
        {
            string arg = argv[i];
            if (arg == "--")
            {
                i++;
                break;
            }

            if (name == "env" && (arg == "-S" || arg == "--split-string" || arg.StartsWith("-S", StringComparison.Ordinal) || arg.StartsWith("--split-string=", StringComparison.Ordinal)))
            {
                // `env -S 'python3 -u'` (and the shebang form, where "-S python3 -u" arrives as one word).
                string split = arg switch
                {
                    "-S" or "--split-string" => i + 1 < argv.Count ? argv[++i] : "",
                    _ when arg.StartsWith("--split-string=", StringComparison.Ordinal) => arg["--split-string=".Length..],
                    _ => arg[2..],
                };
                splitPrefix = SplitEnvString(split);
                i++;
                continue;
            }

            if (name == "flock" && arg is "-c" or "--command")
            {
                shellString = i + 1 < argv.Count ? argv[i + 1] : "";
                return null;
            }

            if (name is "chrt" or "ionice" or "prlimit" && arg is "-p" or "--pid")
            {
                return null; // changes a running process, runs nothing
            }

            if (name is "command" && arg is "-v" or "-V")
            {
                return null;
            }

            if (arg.StartsWith('-') && arg.Length > 1)
            {
                if (!arg.Contains('=') && Array.IndexOf(spec.ValueOptions, arg) >= 0)
                {
                    i += TwoValueOptions.Contains(arg) ? 3 : 2;
                }
                else
                {
                    i++; // a flag, `--opt=value`, or a short option with its value attached (`-n10`, `-oL`)
                }

                continue;
            }

            if (spec.AcceptsAssignments && ShellScript.IsAssignment(arg, out _, out _))
            {
                i++;
                continue;
            }

            if (positionals > 0)
            {
                positionals--;
                i++;
                continue;
            }

            break;
        }

        var inner = new List<string>();
        if (splitPrefix is not null)
        {
            inner.AddRange(splitPrefix);
            splitPrefix = null;
        }

        for (; i < argv.Count; i++)
        {
            inner.Add(argv[i]);
        }

        return inner.Count > 0 ? inner : null;
    }

    /// <summary>`runuser -u USER [--] CMD...`, `runuser [-l] USER -c 'CMD'`, `su [-] USER -c 'CMD'`.</summary>
    private static IReadOnlyList<string>? InnerOfSwitchUser(IReadOnlyList<string> argv, out string? shellString)
    {
        shellString = null;
        bool hasUserOption = false;
        for (int i = 1; i < argv.Count; i++)
        {
            string arg = argv[i];
            if (arg is "-c" or "--command" && i + 1 < argv.Count)
            {
                shellString = argv[i + 1];
                return null;
            }

            if (arg.StartsWith("--command=", StringComparison.Ordinal))
            {
                shellString = arg["--command=".Length..];
                return null;
            }

            if (arg is "-u" or "--user" or "-g" or "--group" or "-G" or "--supp-group" or "-s" or "--shell" or "-w" or "--whitelist-environment")
            {
                hasUserOption |= arg is "-u" or "--user";
                i++;
                continue;
            }

            if (arg == "--" && hasUserOption)
            {
                return argv.Skip(i + 1).ToList();
            }

            if (!arg.StartsWith('-') && hasUserOption)
            {
                return argv.Skip(i).ToList();
            }
        }

        return null;
    }

    /// <summary>Splits `env -S` text: whitespace-separated words with single/double quotes and backslashes.</summary>
    private static List<string> SplitEnvString(string text)
    {
        var words = new List<string>();
        var current = new System.Text.StringBuilder();
        bool inWord = false;
        char quote = '\0';
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else
                {
                    current.Append(c);
                }

                continue;
            }

            if (c is '\'' or '"')
            {
                quote = c;
                inWord = true;
            }
            else if (c == '\\' && i + 1 < text.Length)
            {
                current.Append(text[++i]);
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return words;
    }
}
