namespace Halo.Installer.Doctor.Runtime;

/// <summary>
/// Which executable names are interpreter runtimes. A name matches a runtime when it is the runtime's name
/// exactly or that name followed by a version (`python3`, `python3.11`, `php8.2`, `lua5.4`, `perl5.36.0`)
/// or a known variant suffix (`php-fpm8.3`, `pythonw`); never by substring, so `my-python-exporter` is clean.
/// </summary>
public sealed class RuntimeCatalog
{
    /// <summary>The runtimes forbidden on the serving path unless the config names its own list.</summary>
    public static readonly IReadOnlyList<string> DefaultForbidden =
    [
        "python", "pypy", "node", "nodejs", "deno", "bun", "ruby", "jruby", "perl", "php", "php-fpm", "php-cgi",
        "java", "jre", "jshell", "groovy", "scala", "kotlin", "lua", "luajit", "Rscript", "R", "tclsh", "wish",
        "expect", "escript", "erl", "elixir", "julia", "guile", "racket", "osascript", "pwsh",
    ];

    private readonly HashSet<string> _names;

    public RuntimeCatalog(IEnumerable<string> forbidden)
    {
        _names = new HashSet<string>(forbidden, StringComparer.Ordinal);
    }

    public static RuntimeCatalog Default { get; } = new(DefaultForbidden);

    /// <summary>The runtime that <paramref name="executableName"/> (a file name, no directory) is, or null.</summary>
    public string? Match(string executableName)
    {
        if (executableName.Length == 0)
        {
            return null;
        }

        if (_names.Contains(executableName))
        {
            return executableName;
        }

        // python3.11 -> python, php-fpm8.3 -> php-fpm, pythonw3 -> python (Windows-style console-less name).
        string stem = executableName.TrimEnd('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '.');
        if (stem.Length == executableName.Length || stem.Length == 0 || !IsVersion(executableName[stem.Length..]))
        {
            return stem == "pythonw" && _names.Contains("python") ? "python" : null;
        }

        if (_names.Contains(stem))
        {
            return stem;
        }

        if (stem.EndsWith('w') && _names.Contains(stem[..^1]))
        {
            return stem[..^1];
        }

        return null;
    }

    /// <summary>A version suffix: digits and single dots, starting with a digit (`3`, `3.11`, `5.36.0`).</summary>
    private static bool IsVersion(string suffix)
    {
        if (suffix.Length == 0 || !char.IsAsciiDigit(suffix[0]))
        {
            return false;
        }

        for (int i = 1; i < suffix.Length; i++)
        {
            if (suffix[i] == '.' && (suffix[i - 1] == '.' || i == suffix.Length - 1))
            {
                return false;
            }
        }

        return true;
    }
}
