using System.Text;

namespace Halo.Installer.Doctor.Runtime;

/// <summary>
/// Finds the simple commands a POSIX shell script would run, well enough to see which programs it starts:
/// quotes, escapes and comments; `;`, `&amp;&amp;`, `||`, `|`, `&amp;`, newlines, subshells and groups;
/// redirections and here-documents; command substitution (`$(...)`, backticks, `&lt;(...)`) parsed
/// recursively; leading `VAR=x` assignments skipped and remembered so that a later `$VAR` command word resolves;
/// control keywords (`if`, `then`, `do`, `case ... in`, `for ...`) skipped. It does not evaluate anything.
/// </summary>
public static class ShellScript
{
    private const int MaxNesting = 8;

    private static readonly HashSet<string> SkippedKeywords =
    [
        "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "esac", "time",
        "coproc",
    ];

    private static readonly HashSet<string> SegmentKeywords = ["for", "select", "case", "[[", "function"];

    private static readonly HashSet<string> DeclarationBuiltins = ["export", "readonly", "local", "declare", "typeset"];

    /// <summary>Each simple command as argv, in script order; <paramref name="variables"/> gains assignments.</summary>
    public static IReadOnlyList<IReadOnlyList<string>> Commands(string script, IDictionary<string, string> variables) =>
        Commands(script, variables, 0);

    private static List<IReadOnlyList<string>> Commands(string script, IDictionary<string, string> variables, int nesting)
    {
        var commands = new List<IReadOnlyList<string>>();
        if (nesting > MaxNesting)
        {
            return commands;
        }

        var lexer = new Lexer(script);
        var words = new List<string>();
        int caseDepth = 0;
        string previousOperator = "";
        foreach (Token token in lexer.Tokens())
        {
            foreach (string inner in token.Substitutions)
            {
                commands.AddRange(Commands(inner, variables, nesting + 1));
            }

            if (token.IsOperator)
            {
                if (words.Count > 0 && words[0] == "case")
                {
                    caseDepth++;
                }
                else if (words.Count > 0 && words[0] == "esac")
                {
                    caseDepth = Math.Max(0, caseDepth - 1);
                }

                // Inside `case ... in`, "pattern)" is a pattern, not a command - unless ")" closes a "(" subshell.
                bool isCasePattern = caseDepth > 0 && token.Text == ")" && previousOperator != "(";
                if (!isCasePattern)
                {
                    AddSimpleCommand(commands, words, variables);
                }

                words.Clear();
                previousOperator = token.Text;
                continue;
            }

            words.Add(Expand(token.Text, token.Raw, variables));
        }

        AddSimpleCommand(commands, words, variables);
        return commands;
    }

    private static void AddSimpleCommand(List<IReadOnlyList<string>> commands, List<string> words, IDictionary<string, string> variables)
    {
        int i = 0;
        while (i < words.Count && SkippedKeywords.Contains(words[i]))
        {
            i++;
        }

        if (i < words.Count && SegmentKeywords.Contains(words[i]))
        {
            return; // `for x in a b`, `case $x in`, `[[ ... ]]`: no program runs in this segment itself
        }

        int firstCommandWord = i;
        while (firstCommandWord < words.Count && IsAssignment(words[firstCommandWord], out _, out _))
        {
            firstCommandWord++;
        }

        if (firstCommandWord == words.Count || DeclarationBuiltins.Contains(words[firstCommandWord]))
        {
            // Only assignments (or `export A=b`): they stay for the rest of the script.
            for (int j = i; j < words.Count; j++)
            {
                if (IsAssignment(words[j], out string name, out string value))
                {
                    variables[name] = value;
                }
            }

            return;
        }

        commands.Add(words.GetRange(firstCommandWord, words.Count - firstCommandWord));
    }

    public static bool IsAssignment(string word, out string name, out string value)
    {
        name = value = "";
        int eq = word.IndexOf('=');
        if (eq <= 0 || !(char.IsAsciiLetter(word[0]) || word[0] == '_'))
        {
            return false;
        }

        for (int i = 1; i < eq; i++)
        {
            if (!(char.IsAsciiLetterOrDigit(word[i]) || word[i] == '_'))
            {
                return false;
            }
        }

        name = word[..eq];
        value = word[(eq + 1)..];
        return true;
    }

    /// <summary>Substitutes known `$NAME` / `${NAME}` in the unquoted-or-double-quoted parts of a word.</summary>
    private static string Expand(string text, string raw, IDictionary<string, string> variables)
    {
        if (!raw.Contains('$'))
        {
            return text;
        }

        var result = new StringBuilder();
        int i = 0;
        while (i < text.Length)
        {
            if (text[i] != '$' || i + 1 >= text.Length)
            {
                result.Append(text[i++]);
                continue;
            }

            int start = i + 1;
            bool braced = text[start] == '{';
            int nameStart = braced ? start + 1 : start;
            int end = nameStart;
            while (end < text.Length && (char.IsAsciiLetterOrDigit(text[end]) || text[end] == '_'))
            {
                end++;
            }

            string name = text[nameStart..end];
            bool closed = !braced || (end < text.Length && text[end] == '}');
            if (name.Length > 0 && closed && variables.TryGetValue(name, out string? value))
            {
                result.Append(value);
                i = braced ? end + 1 : end;
                continue;
            }

            result.Append(text[i++]);
        }

        return result.ToString();
    }

    private sealed record Token(string Text, string Raw, bool IsOperator, IReadOnlyList<string> Substitutions);

    /// <summary>Splits shell text into words and control operators.</summary>
    private sealed class Lexer(string text)
    {
        private int _pos;
        private readonly List<string> _pendingHeredocs = [];

        public IEnumerable<Token> Tokens()
        {
            while (true)
            {
                SkipBlanks();
                if (_pos >= text.Length)
                {
                    yield break;
                }

                char c = text[_pos];
                if (c == '#')
                {
                    while (_pos < text.Length && text[_pos] != '\n')
                    {
                        _pos++;
                    }

                    continue;
                }

                if (c == '\n')
                {
                    _pos++;
                    SkipHeredocBodies();
                    yield return Operator("\n");
                    continue;
                }

                if (IsRedirection(out bool heredoc))
                {
                    var substitutions = new List<string>();
                    SkipBlanks();
                    string target = ReadWord(substitutions, out _);
                    if (heredoc)
                    {
                        _pendingHeredocs.Add(target);
                    }

                    if (substitutions.Count > 0)
                    {
                        yield return new Token("", "", true, substitutions);
                    }

                    continue;
                }

                if (c is ';' or '&' or '|' or '(' or ')')
                {
                    int start = _pos++;
                    while (_pos < text.Length && text[_pos] is ';' or '&' or '|' && _pos - start < 2)
                    {
                        _pos++;
                    }

                    yield return Operator(text[start.._pos]);
                    continue;
                }

                var subs = new List<string>();
                string raw;
                string word = ReadWord(subs, out raw);
                yield return new Token(word, raw, false, subs);
            }
        }

        private static Token Operator(string op) => new(op, op, true, []);

        private void SkipBlanks()
        {
            while (_pos < text.Length)
            {
                if (text[_pos] is ' ' or '\t' or '\r')
                {
                    _pos++;
                }
                else if (text[_pos] == '\\' && _pos + 1 < text.Length && text[_pos + 1] == '\n')
                {
                    _pos += 2;
                }
                else
                {
                    break;
                }
            }
        }

        /// <summary>At `[n]&gt;`, `&gt;&gt;`, `&lt;`, `&lt;&lt;[-]`, `&lt;&lt;&lt;`, `&gt;&amp;`, `&amp;&gt;`, `&gt;|`: consumes the operator.</summary>
        private bool IsRedirection(out bool heredoc)
        {
            heredoc = false;
            int p = _pos;
            while (p < text.Length && char.IsAsciiDigit(text[p]))
            {
                p++;
            }

            if (p < text.Length && text[p] == '&' && p + 1 < text.Length && text[p + 1] == '>' && p == _pos)
            {
                p++;
            }

            if (p >= text.Length || text[p] is not ('<' or '>'))
            {
                return false;
            }

            if (text[p] == '<' && p + 1 < text.Length && text[p + 1] == '(')
            {
                return false; // process substitution: a word
            }

            if (text[p] == '>' && p + 1 < text.Length && text[p + 1] == '(')
            {
                return false;
            }

            bool isHeredoc = text[p] == '<' && p + 1 < text.Length && text[p + 1] == '<' &&
                             !(p + 2 < text.Length && text[p + 2] == '<');
            p++;
            while (p < text.Length && text[p] is '<' or '>' or '&' or '|' or '-')
            {
                p++;
            }

            heredoc = isHeredoc;
            _pos = p;
            return true;
        }

        private void SkipHeredocBodies()
        {
            foreach (string delimiter in _pendingHeredocs)
            {
                while (_pos < text.Length)
                {
                    int end = text.IndexOf('\n', _pos);
                    string line = end < 0 ? text[_pos..] : text[_pos..end];
                    _pos = end < 0 ? text.Length : end + 1;
                    if (line.Trim('\t', ' ') == delimiter)
                    {
                        break;
                    }
                }
            }

            _pendingHeredocs.Clear();
        }

        /// <summary>Reads one word with its quotes removed; command substitutions go to <paramref name="substitutions"/>.</summary>
        private string ReadWord(List<string> substitutions, out string raw)
        {
            var word = new StringBuilder();
            int start = _pos;
            while (_pos < text.Length)
            {
                char c = text[_pos];
                if (c is ' ' or '\t' or '\r' or '\n' or ';' or '&' or '|' or ')' or '(' && !IsProcessSubstitutionStart())
                {
                    break;
                }

                if (c is '<' or '>' && IsProcessSubstitutionStart())
                {
                    _pos++;
                    substitutions.Add(ReadBalanced('(', ')'));
                    word.Append("/dev/fd/63");
                    continue;
                }

                if (c is '<' or '>')
                {
                    break;
                }

                switch (c)
                {
                    case '\\':
                        if (_pos + 1 < text.Length && text[_pos + 1] != '\n')
                        {
                            word.Append(text[_pos + 1]);
                        }

                        _pos += 2;
                        break;
                    case '\'':
                        int close = text.IndexOf('\'', _pos + 1);
                        close = close < 0 ? text.Length : close;
                        word.Append(text, _pos + 1, close - _pos - 1);
                        _pos = close + 1;
                        break;
                    case '"':
                        _pos++;
                        while (_pos < text.Length && text[_pos] != '"')
                        {
                            if (text[_pos] == '\\' && _pos + 1 < text.Length && text[_pos + 1] is '"' or '\\' or '$' or '`')
                            {
                                word.Append(text[_pos + 1]);
                                _pos += 2;
                            }
                            else if (!TryReadSubstitution(word, substitutions))
                            {
                                word.Append(text[_pos++]);
                            }
                        }

                        _pos++;
                        break;
                    default:
                        if (!TryReadSubstitution(word, substitutions))
                        {
                            word.Append(c);
                            _pos++;
                        }

                        break;
                }
            }

            raw = text[start..Math.Min(_pos, text.Length)];
            return word.ToString();
        }

        private bool IsProcessSubstitutionStart() =>
            _pos + 1 < text.Length && text[_pos] is '<' or '>' && text[_pos + 1] == '(';

        /// <summary>`$(...)`, `` `...` `` (commands, parsed later) and `$((...))` (arithmetic, skipped).</summary>
        private bool TryReadSubstitution(StringBuilder word, List<string> substitutions)
        {
            if (text[_pos] == '`')
            {
                int close = text.IndexOf('`', _pos + 1);
                close = close < 0 ? text.Length : close;
                substitutions.Add(text[(_pos + 1)..close]);
                word.Append("$(...)");
                _pos = Math.Min(close + 1, text.Length);
                return true;
            }

            if (text[_pos] != '$' || _pos + 1 >= text.Length || text[_pos + 1] != '(')
            {
                return false;
            }

            _pos++;
            bool arithmetic = _pos + 1 < text.Length && text[_pos + 1] == '(';
            string inner = ReadBalanced('(', ')');
            if (!arithmetic)
            {
                substitutions.Add(inner);
            }

            word.Append("$(...)");
            return true;
        }

        /// <summary>At an opening bracket: returns the text up to its match (quotes respected) and moves past it.</summary>
        private string ReadBalanced(char open, char close)
        {
            int depth = 0;
            int start = _pos + 1;
            while (_pos < text.Length)
            {
                char c = text[_pos];
                if (c == '\'' )
                {
                    int end = text.IndexOf('\'', _pos + 1);
                    _pos = end < 0 ? text.Length : end + 1;
                    continue;
                }

                if (c == '\\')
                {
                    _pos += 2;
                    continue;
                }

                if (c == open)
                {
                    depth++;
                }
                else if (c == close && --depth == 0)
                {
                    _pos++;
                    return text[start..(_pos - 1)];
                }

                _pos++;
            }

            return start <= text.Length ? text[start..] : "";
        }
    }
}
