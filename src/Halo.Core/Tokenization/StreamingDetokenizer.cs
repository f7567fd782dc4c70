using System.Text;

namespace Halo.Core.Tokenization;

/// <summary>
/// Turns generated tokens into text deltas for streaming. A token can end in the middle of a UTF-8
/// character (emoji and CJK are often split over two or three byte tokens), so the bytes of an incomplete
/// character are held back until the token that completes it arrives; invalid bytes become U+FFFD.
/// One instance per generation; not thread-safe. Appending allocates nothing once the output has room.
/// </summary>
public sealed class StreamingDetokenizer
{
    private readonly BpeTokenizer _tokenizer;
    private readonly bool _renderSpecial;
    private readonly Decoder _decoder = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private byte[] _bytes = new byte[64];
    private char[] _chars = new char[64 + 4];

    /// <param name="renderSpecial">Emit control tokens (e.g. &lt;|eot_id|&gt;) as their text instead of nothing.</param>
    public StreamingDetokenizer(BpeTokenizer tokenizer, bool renderSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _renderSpecial = renderSpecial;
    }

    /// <summary>Appends the text that token <paramref name="id"/> completes; returns how many chars were appended.</summary>
    public int Append(int id, StringBuilder output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var length = _tokenizer.PieceLength(id, _renderSpecial);
        if (length == 0)
        {
            return 0;
        }

        if (_bytes.Length < length)
        {
            _bytes = new byte[length * 2];
            _chars = new char[_bytes.Length + 4]; // held-back bytes may each become a U+FFFD
        }

        var written = _tokenizer.AppendPiece(id, _renderSpecial, _bytes);
        var chars = _decoder.GetChars(_bytes, 0, written, _chars, 0, flush: false);
        output.Append(_chars, 0, chars);
        return chars;
    }

    /// <summary>Ends the stream: bytes of a character that never completed come out as U+FFFD.</summary>
    public int Flush(StringBuilder output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var chars = _decoder.GetChars(_bytes, 0, 0, _chars, 0, flush: true);
        output.Append(_chars, 0, chars);
        return chars;
    }

    /// <summary>Forgets held-back bytes so the instance can start a new stream.</summary>
    public void Reset() => _decoder.Reset();
}
