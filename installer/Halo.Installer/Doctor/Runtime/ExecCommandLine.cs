using System.Text;

namespace Halo.Installer.Doctor.Runtime;

/// <summary>One command of an Exec*= line after systemd's parsing: its prefix flags and the words.</summary>
/// <param name="Argv">The executable first, then the arguments (argv[0] override of `@` already removed).</param>
/// <param name="ViaShell">The `|` prefix: the words are a command line for the user's shell.</param>
public sealed record ExecCommand(IReadOnlyList<string> Argv, bool ViaShell);

/// <summary>
/// Splits an Exec*= value the way systemd.service(5) "Command lines" describes: prefixes (`-`, `@`, `:`,
/// `+`, `!`, `!!`, `|`), words with single/double quotes and C escapes, lone `;` between commands,
/// `${VAR}` expanded inside a word, `$VAR` as a whole word split into words, `%%` specifiers.
/// </summary>
public static class ExecCommandLine
{
    public static IReadOnlyList<ExecCommand> Parse(string value, IReadOnlyDictionary<string, string> environment)
    {
        var commands = new List<ExecCommand>();
        var words = new List<Word>();
        foreach (Word word in Tokenize(value))
        {
            if (word.Text == ";" && !word.Quoted)
            {
                AddCommand(commands, words, environment);
                words.Clear();
                continue;
            }

            words.Add(word);
        }

        AddCommand(commands, words, environment);
        return commands;
    }

    private static void AddCommand(List<ExecCommand> commands, List<Word> words, IReadOnlyDictionary<string, string> environment)
    {
        if (words.Count == 0)
        {
            return;
        }

        // The prefixes stick to the first word: "-@/usr/bin/x argv0 arg".
        string first = words[0].Text;
        int start = 0;
        bool argv0Override = false;
        bool viaShell = false;
        while (start < first.Length && "-@:+!|".Contains(first[start]))
        {
            argv0Override |= first[start] == '@';
            viaShell |= first[start] == '|';
            start++;
        }

        var argv = new List<string>();
        string executable = first[start..];
        if (executable.Length > 0)
        {
            argv.Add(ExpandSpecifiers(ExpandBraced(executable, environment)));
        }

        for (int i = 1; i < words.Count; i++)
        {
            if (argv0Override && i == 1)
            {
                continue; // `@`: the second word is argv[0], not an argument the program sees as a file.
            }

            Word word = words[i];
            if (!word.Quoted && IsWholeVariable(word.Text, out string name))
            {
                // "$FOO" alone: its value is split at whitespace into several words.
                if (environment.TryGetValue(name, out string? expanded))
                {
                    argv.AddRange(expanded.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries));
                }

                continue;
            }

            argv.Add(ExpandSpecifiers(ExpandBraced(word.Text, environment)));
        }

        if (argv.Count > 0)
        {
            commands.Add(new ExecCommand(argv, viaShell));
        }
    }

    private static bool IsWholeVariable(string text, out string name)
    {
        name = "";
        if (text.Length < 2 || text[0] != '$' || text[1] == '{')
        {
            return false;
        }

        for (int i = 1; i < text.Length; i++)
        {
            if (!(char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_'))
            {
                return false;
            }
        }

        name = text[1..];
        return true;
    }

    private static string ExpandBraced(string text, IReadOnlyDictionary<string, string> environment)
    {
        if (!text.Contains("${", StringComparison.Ordinal))
        {
            return text;
        }

        var result = new StringBuilder();
        int i = 0;
        while (i < text.Length)
        {
            int open = text.IndexOf("${", i, StringComparison.Ordinal);
            int close = open < 0 ? -1 : text.IndexOf('}', open + 2);
            if (open < 0 || close < 0)
            {
                result.Append(text, i, text.Length - i);
                break;
            }

            result.Append(text, i, open - i);
            string name = text[(open + 2)..close];
            result.Append(environment.TryGetValue(name, out string? value) ? value : "");
            i = close + 1;
        }

        return result.ToString();
    }

    /// <summary>`%%` is a literal percent; other specifiers (%i, %h, ...) stay, they never name a runtime.</summary>
    private static string ExpandSpecifiers(string text) => text.Replace("%%", "%", StringComparison.Ordinal);

    private readonly record struct Word(string Text, bool Quoted);

    private static IEnumerable<Word> Tokenize(string value)
    {
        var current = new StringBuilder();
        bool inWord = false;
        bool quoted = false;
        int i = 0;
        while (i < value.Length)
        {
            char c = value[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    yield return new Word(current.ToString(), quoted);
                    current.Clear();
                    inWord = false;
                    quoted = false;
                }

                i++;
                continue;
            }

            inWord = true;
            if (c == '"' || c == '\'')
            {
                quoted = true;
                i++;
                while (i < value.Length && value[i] != c)
                {
                    if (value[i] == '\\' && i + 1 < value.Length)
                    {
                        i = AppendEscape(value, i, current);
                        continue;
                    }

                    current.Append(value[i++]);
                }

                i++; // closing quote
                continue;
            }

            if (c == '\\' && i + 1 < value.Length)
            {
                if (value[i + 1] == ';')
                {
                    quoted = true; // "\;" is a literal semicolon, never a separator
                }

                i = AppendEscape(value, i, current);
                continue;
            }

            current.Append(c);
            i++;
        }

        if (inWord)
        {
            yield return new Word(current.ToString(), quoted);
        }
    }

    /// <summary>Appends the C escape at value[i] (a backslash) and returns the index after it.</summary>
    private static int AppendEscape(string value, int i, StringBuilder into)
    {
        char e = value[i + 1];
        switch (e)
        {
            case 'n': into.Append('\n'); return i + 2;
            case 't': into.Append('\t'); return i + 2;
            case 'r': into.Append('\r'); return i + 2;
            case 'x' when i + 3 < value.Length && IsHex(value[i + 2]) && IsHex(value[i + 3]):
                into.Append((char)System.Convert.ToInt32(value.Substring(i + 2, 2), 16));
                return i + 4;
            default: into.Append(e); return i + 2;
        }
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);
}
