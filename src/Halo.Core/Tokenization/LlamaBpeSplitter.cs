using System.Globalization;
using System.Text;

namespace Halo.Core.Tokenization;

/// <summary>
/// The LLaMA-3 (<c>llama-bpe</c>) pre-tokenizer: splits text into the words that BPE then merges, as the
/// regex
/// <code>
/// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
/// </code>
/// does, written out as a scanner the way llama.cpp's <c>unicode_regex_split_custom_llama3</c> runs it
/// (alternatives tried in order at each position; \p{L} and \p{N} are the Unicode general categories L* and
/// N*, \s the White_Space property). A hand-rolled scanner is exact by construction where a backtracking
/// regex would need care with the lookahead, and it walks the UTF-16 text without allocating.
/// </summary>
internal ref struct LlamaBpeSplitter
{
    private readonly ReadOnlySpan<char> _text;
    private int _position;

    public LlamaBpeSplitter(ReadOnlySpan<char> text)
    {
        _text = text;
        _position = 0;
    }

    /// <summary>The next word as a UTF-16 range of the text; false at the end.</summary>
    public bool TryNext(out int start, out int length)
    {
        start = _position;
        if (_position >= _text.Length)
        {
            length = 0;
            return false;
        }

        _position = MatchEnd(_position);
        length = _position - start;
        return true;
    }

    private enum CharClass : byte
    {
        End,        // past the end of the text: matches nothing, not even [^...]
        Letter,     // \p{L}
        Number,     // \p{N}
        Whitespace, // \s
        Other,      // everything else: punctuation, symbols, marks, controls
    }

    private readonly int MatchEnd(int pos)
    {
        var cpt = CodePointAt(pos);
        var cls = ClassAt(pos);

        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if (cpt == '\'' && pos + 1 < _text.Length)
        {
            var next = AsciiLower(CodePointAt(pos + 1));
            if (next is 's' or 't' or 'm' or 'd')
            {
                return pos + 2;
            }

            if (pos + 2 < _text.Length)
            {
                var nextNext = AsciiLower(CodePointAt(pos + 2));
                if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l'))
                {
                    return pos + 3;
                }
            }
        }

        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (cpt != '\r' && cpt != '\n' && cls != CharClass.Number)
        {
            var afterFirst = Advance(pos);
            if (cls == CharClass.Letter || ClassAt(afterFirst) == CharClass.Letter)
            {
                var end = afterFirst;
                while (ClassAt(end) == CharClass.Letter)
                {
                    end = Advance(end);
                }

                return end;
            }
        }

        // \p{N}{1,3}
        if (cls == CharClass.Number)
        {
            var end = pos;
            for (var digits = 0; digits < 3 && ClassAt(end) == CharClass.Number; digits++)
            {
                end = Advance(end);
            }

            return end;
        }

        // " ?[^\s\p{L}\p{N}]+[\r\n]*" - entered even when a lone space ends the text (llama.cpp does the same;
        // the word is " " either way).
        var afterSpace = cpt == ' ' ? Advance(pos) : pos;
        var punctuationClass = ClassAt(afterSpace);
        if (punctuationClass is CharClass.Other or CharClass.End)
        {
            var end = afterSpace;
            while (ClassAt(end) == CharClass.Other)
            {
                end = Advance(end);
            }

            while (end < _text.Length && _text[end] is '\r' or '\n')
            {
                end++;
            }

            return end;
        }

        // Whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
        var runEnd = pos;
        var lastStart = pos;
        var afterLastNewline = -1;
        var count = 0;
        while (ClassAt(runEnd) == CharClass.Whitespace)
        {
            if (_text[runEnd] is '\r' or '\n')
            {
                afterLastNewline = runEnd + 1;
            }

            lastStart = runEnd;
            runEnd = Advance(runEnd);
            count++;
        }

        if (afterLastNewline >= 0)
        {
            return afterLastNewline;
        }

        if (count > 1 && runEnd < _text.Length)
        {
            // Leave the last space to prefix the word that follows.
            return lastStart;
        }

        if (count > 0)
        {
            return runEnd;
        }

        return Advance(pos);
    }

    private readonly int CodePointAt(int pos)
    {
        Rune.DecodeFromUtf16(_text[pos..], out var rune, out _);
        return rune.Value;
    }

    private readonly int Advance(int pos)
    {
        if (pos >= _text.Length)
        {
            return pos;
        }

        return char.IsHighSurrogate(_text[pos]) && pos + 1 < _text.Length && char.IsLowSurrogate(_text[pos + 1]) ? pos + 2 : pos + 1;
    }

    private readonly CharClass ClassAt(int pos)
    {
        if (pos >= _text.Length)
        {
            return CharClass.End;
        }

        var c = _text[pos];
        if (c < 0x80)
        {
            return AsciiClasses[c];
        }

        Rune.DecodeFromUtf16(_text[pos..], out var rune, out _);
        return Classify(rune);
    }

    private static CharClass Classify(Rune rune)
    {
        if (Rune.IsWhiteSpace(rune))
        {
            return CharClass.Whitespace;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
            _ => CharClass.Other,
        };
    }

    private static int AsciiLower(int c) => c is >= 'A' and <= 'Z' ? c + 32 : c;

    private static readonly CharClass[] AsciiClasses = BuildAsciiClasses();

    private static CharClass[] BuildAsciiClasses()
    {
        var classes = new CharClass[128];
        for (var c = 0; c < 128; c++)
        {
            classes[c] = Classify(new Rune(c));
        }

        return classes;
    }
}
