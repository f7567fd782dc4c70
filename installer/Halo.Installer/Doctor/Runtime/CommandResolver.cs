using System.Text;

namespace Halo.Installer.Doctor.Runtime;

/// <summary>An interpreter that a command reaches, and how: the chain of programs and scripts on the way.</summary>
/// <param name="Runtime">The runtime's catalog name (`python`, `node`, ...) - what the offender names.</param>
/// <param name="Executable">The executable name as found (`python3.11`).</param>
/// <param name="Path">Chain from the command to the interpreter, e.g. "/opt/app/run -> #!/usr/bin/env python3 -> /usr/bin/python3.11".</param>
public sealed record RuntimeHit(string Runtime, string Executable, string Path);

/// <summary>
/// Follows a command the way the kernel and the shells would run it, inside a <see cref="SystemRoot"/>:
/// PATH lookup, symlinks, `#!` lines (the kernel's single optional argument), `env`/`nice`/`sudo`-style
/// wrappers, `sh -c` strings and shell scripts (their commands, recursively), and reports every interpreter
/// runtime it reaches. A program counts as a runtime by its file name (the name it is called by or the
/// symlink's final target), never by a substring; ELF files end the search.
/// </summary>
public sealed class CommandResolver
{
    private const int MaxDepth = 12;

    private static readonly HashSet<string> Shells = ["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "rbash", "lksh", "oksh"];

    private readonly SystemRoot _root;
    private readonly RuntimeCatalog _catalog;
    private readonly HashSet<string> _allowed;

    public CommandResolver(SystemRoot root, RuntimeCatalog catalog, IEnumerable<string> allowedPaths)
    {
        _root = root;
        _catalog = catalog;
        _allowed = new HashSet<string>(allowedPaths, StringComparer.Ordinal);
    }

    /// <summary>The runtimes <paramref name="argv"/> reaches when started with <paramref name="searchPath"/> as PATH.</summary>
    public IReadOnlyList<RuntimeHit> Inspect(IReadOnlyList<string> argv, IReadOnlyList<string> searchPath, IReadOnlyDictionary<string, string> environment)
    {
        var hits = new List<RuntimeHit>();
        var variables = new Dictionary<string, string>(environment, StringComparer.Ordinal);
        Follow(argv, new Context(searchPath, variables, "", 0, FromShell: false), hits);
        return hits;
    }

    /// <summary>The runtimes a shell command line reaches (the `|` Exec prefix, `su -c`, ...).</summary>
    public IReadOnlyList<RuntimeHit> InspectShell(string script, IReadOnlyList<string> searchPath, IReadOnlyDictionary<string, string> environment)
    {
        var hits = new List<RuntimeHit>();
        var variables = new Dictionary<string, string>(environment, StringComparer.Ordinal);
        FollowScript(script, new Context(searchPath, variables, "sh -c", 0, FromShell: true), hits);
        return hits;
    }

    private sealed record Context(IReadOnlyList<string> SearchPath, Dictionary<string, string> Variables, string Chain, int Depth, bool FromShell)
    {
        public Context Next(string step, bool fromShell) =>
            this with { Chain = Chain.Length == 0 ? step : Chain + " -> " + step, Depth = Depth + 1, FromShell = fromShell };
    }

    private void Follow(IReadOnlyList<string> argv, Context context, List<RuntimeHit> hits)
    {
        if (argv.Count == 0 || context.Depth > MaxDepth || argv[0].Length == 0 || argv[0].Contains('$'))
        {
            return;
        }

        string command = argv[0];
        string? found = _root.Which(command, context.SearchPath);
        string? real = found is null ? null : _root.Resolve(found);
        string calledName = System.IO.Path.GetFileName(command);
        string realName = real is null ? calledName : System.IO.Path.GetFileName(real);
        string step = real is not null && real != command ? $"{command} ({real})" : command;
        Context here = context.Next(step, context.FromShell);

        if (IsAllowed(command) || (found is not null && IsAllowed(found)) || (real is not null && IsAllowed(real)))
        {
            return;
        }

        // The name it is called by counts too: multi-call binaries act on argv[0].
        string? runtime = _catalog.Match(calledName) ?? _catalog.Match(realName);
        if (runtime is not null)
        {
            string executable = _catalog.Match(realName) is not null ? realName : calledName;
            hits.Add(new RuntimeHit(runtime, executable, here.Chain));
            return;
        }

        string wrapperName = CommandWrappers.IsWrapper(calledName) ? calledName : realName;
        if (CommandWrappers.IsWrapper(wrapperName))
        {
            IReadOnlyList<string>? inner = CommandWrappers.Inner(wrapperName, argv, out string? shellString, out _);
            if (shellString is not null)
            {
                FollowScript(shellString, here.Next("-c", fromShell: true), hits);
            }
            else if (inner is not null)
            {
                Follow(inner, here, hits);
            }

            return;
        }

        string shellName = Shells.Contains(calledName) ? calledName : realName;
        if (Shells.Contains(shellName))
        {
            FollowShellInvocation(argv, here, hits);
            return;
        }

        if (real is null)
        {
            return;
        }

        FollowFile(real, argv, here, hits);
    }

    /// <summary>A regular file: ELF ends the search, `#!` continues with the interpreter, plain text is a shell script to a shell.</summary>
    private void FollowFile(string real, IReadOnlyList<string> argv, Context context, List<RuntimeHit> hits)
    {
        byte[]? head = _root.ReadHead(real);
        if (head is null || head.Length < 2)
        {
            return;
        }

        if (head.Length >= 4 && head[0] == 0x7f && head[1] == (byte)'E' && head[2] == (byte)'L' && head[3] == (byte)'F')
        {
            return;
        }

        if (head[0] == (byte)'#' && head[1] == (byte)'!')
        {
            // The kernel: interpreter path, then everything else on the line as ONE argument.
            string line = Encoding.UTF8.GetString(head, 2, head.Length - 2);
            int newline = line.IndexOf('\n');
            line = (newline >= 0 ? line[..newline] : line).Trim(' ', '\t', '\r');
            int space = line.IndexOfAny([' ', '\t']);
            string interpreter = space < 0 ? line : line[..space];
            string argument = space < 0 ? "" : line[(space + 1)..].Trim(' ', '\t');
            var next = new List<string> { interpreter };
            if (argument.Length > 0)
            {
                next.Add(argument);
            }

            next.Add(real);
            for (int i = 1; i < argv.Count; i++)
            {
                next.Add(argv[i]);
            }

            Follow(next, context.Next("#!" + line, fromShell: false), hits);
            return;
        }

        if (context.FromShell && LooksLikeText(head))
        {
            // execve fails with ENOEXEC; a shell then runs the file as a shell script itself.
            FollowScriptFile(real, context, hits);
        }
    }

    /// <summary>`sh [-opts] -c 'STRING' [name args]` or `sh [-opts] FILE [args]`.</summary>
    private void FollowShellInvocation(IReadOnlyList<string> argv, Context context, List<RuntimeHit> hits)
    {
        bool commandString = false;
        for (int i = 1; i < argv.Count; i++)
        {
            string arg = argv[i];
            if (arg == "--")
            {
                if (i + 1 < argv.Count && !commandString)
                {
                    FollowScriptPath(argv[i + 1], context, hits);
                }

                return;
            }

            if (arg is "-o" or "+o" or "-O" or "+O" or "--rcfile" or "--init-file")
            {
                i++;
                continue;
            }

            if ((arg.StartsWith('-') || arg.StartsWith('+')) && arg.Length > 1)
            {
                // -c, or a cluster such as -ec / -xc / -lc
                commandString |= !arg.StartsWith("--", StringComparison.Ordinal) && arg.Contains('c');
                if (arg is "-s")
                {
                    return; // commands from stdin: nothing to read
                }

                continue;
            }

            if (commandString)
            {
                FollowScript(arg, context.Next("-c", fromShell: true), hits);
            }
            else
            {
                FollowScriptPath(arg, context, hits);
            }

            return;
        }
    }

    private void FollowScriptPath(string path, Context context, List<RuntimeHit> hits)
    {
        string? found = path.Contains('/') ? (path.StartsWith('/') ? path : null) : _root.Which(path, context.SearchPath);
        string? real = found is null ? null : _root.Resolve(found);
        if (real is null || IsAllowed(path) || IsAllowed(real))
        {
            return;
        }

        FollowScriptFile(real, context.Next(real, fromShell: true), hits);
    }

    private void FollowScriptFile(string real, Context context, List<RuntimeHit> hits)
    {
        string? text = _root.ReadText(real);
        if (text is not null)
        {
            FollowScript(text, context with { FromShell = true }, hits);
        }
    }

    private void FollowScript(string script, Context context, List<RuntimeHit> hits)
    {
        if (context.Depth > MaxDepth)
        {
            return;
        }

        Context inShell = context with { FromShell = true };
        foreach (IReadOnlyList<string> command in ShellScript.Commands(script, context.Variables))
        {
            if (command[0] is "eval")
            {
                FollowScript(string.Join(' ', command.Skip(1)), inShell.Next("eval", fromShell: true), hits);
                continue;
            }

            if (command[0] is "." or "source" && command.Count > 1)
            {
                FollowScriptPath(command[1], inShell, hits);
                continue;
            }

            Follow(command, inShell, hits);
        }
    }

    private bool IsAllowed(string path) => _allowed.Contains(path);

    private static bool LooksLikeText(byte[] head)
    {
        foreach (byte b in head)
        {
            if (b == 0)
            {
                return false;
            }
        }

        return true;
    }
}
