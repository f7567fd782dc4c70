using System.Text;

namespace Halo.Server.Inference;

/// <summary>
/// Turns generated tokens into text as they come. A token may end inside a multi-byte UTF-8 character
/// (byte-level BPE splits them), so bytes are decoded incrementally and a partial character waits for the
/// next token instead of turning into U+FFFD.
/// </summary>
internal sealed class TokenTextStream(IServedTokenizer tokenizer)
{
    private readonly Decoder _decoder = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private char[] _chars = new char[64];

    /// <summary>The text this token completes (may be empty).</summary>
    public string Push(int token) => DecodeBytes(tokenizer.TokenBytes(token), flush: false);

    /// <summary>Whatever is left at the end (an incomplete character becomes U+FFFD).</summary>
    public string Flush() => DecodeBytes([], flush: true);

    /// <summary>The whole text of a token sequence.</summary>
    public static string Decode(IServedTokenizer tokenizer, ReadOnlySpan<int> tokens)
    {
        var stream = new TokenTextStream(tokenizer);
        var text = new StringBuilder();
        foreach (int token in tokens)
        {
            text.Append(stream.Push(token));
        }

        return text.Append(stream.Flush()).ToString();
    }

    private string DecodeBytes(ReadOnlySpan<byte> bytes, bool flush)
    {
        int needed = _decoder.GetCharCount(bytes, flush: false) + 4;
        if (_chars.Length < needed)
        {
            _chars = new char[Math.Max(needed, _chars.Length * 2)];
        }

        int count = _decoder.GetChars(bytes, _chars, flush);
        return count == 0 ? "" : new string(_chars, 0, count);
    }
}
