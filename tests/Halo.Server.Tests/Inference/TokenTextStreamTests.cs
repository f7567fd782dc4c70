using System.Text;
using Halo.Server.Inference;

namespace Halo.Server.Tests.Inference;

public sealed class TokenTextStreamTests
{
    /// <summary>Token i stands for the i-th byte sequence given.</summary>
    private sealed class BytesTokenizer(params byte[][] tokens) : IServedTokenizer
    {
        public int VocabSize => tokens.Length;

        public IReadOnlyList<int> StopTokens => [];

        public int[] Encode(string text, bool addBos) => throw new NotSupportedException();

        public int[] EncodeChat(IReadOnlyList<(string Role, string Content)> messages) => throw new NotSupportedException();

        public ReadOnlySpan<byte> TokenBytes(int token) => tokens[token];
    }

    [Fact]
    public void Push_CharacterSplitAcrossTokens_WaitsForItsLastByte()
    {
        byte[] euro = Encoding.UTF8.GetBytes("€");   // E2 82 AC
        var tokenizer = new BytesTokenizer("a"u8.ToArray(), [euro[0]], [euro[1], euro[2]], "b"u8.ToArray());
        var stream = new TokenTextStream(tokenizer);

        Assert.Equal("a", stream.Push(0));
        Assert.Equal("", stream.Push(1));
        Assert.Equal("€", stream.Push(2));
        Assert.Equal("b", stream.Push(3));
        Assert.Equal("", stream.Flush());
    }

    [Fact]
    public void Flush_IncompleteCharacterAtTheEnd_BecomesReplacementCharacter()
    {
        var tokenizer = new BytesTokenizer([0xE2]);
        var stream = new TokenTextStream(tokenizer);

        Assert.Equal("", stream.Push(0));
        Assert.Equal("\uFFFD", stream.Flush());
    }

    [Fact]
    public void Decode_WholeSequence_EqualsUtf8OfTheBytes()
    {
        byte[] text = Encoding.UTF8.GetBytes("héllo wörld €");
        var tokenizer = new BytesTokenizer(text.Select(b => new[] { b }).ToArray());

        Assert.Equal("héllo wörld €", TokenTextStream.Decode(tokenizer, Enumerable.Range(0, text.Length).ToArray()));
    }
}
