using System.Text;
using Halo.Core.Tokenization;
using Halo.Testing;

namespace Halo.Core.Tests.Tokenization;

public sealed class StreamingDetokenizerTests
{
    [Fact]
    public void Append_EmojiSplitOverByteTokens_HoldsBackUntilComplete()
    {
        var tokenizer = new BpeTokenizer(ByteLevelVocabulary.Create());
        var ids = tokenizer.Encode("a\ud83d\ude00", addSpecial: false); // 'a' then the emoji's 4 byte tokens
        var detokenizer = new StreamingDetokenizer(tokenizer);
        var output = new StringBuilder();
        var deltas = new List<int>();

        foreach (var id in ids)
        {
            deltas.Add(detokenizer.Append(id, output));
        }

        Assert.Equal([1, 0, 0, 0, 2], deltas);
        Assert.Equal("a\ud83d\ude00", output.ToString());
    }

    [Fact]
    public void Append_Llama3ReferenceCases_ConcatenationEqualsDecode()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;
        foreach (var (text, ids) in Llama3Tokenizer.PlainCases())
        {
            var detokenizer = new StreamingDetokenizer(tokenizer);
            var output = new StringBuilder();
            foreach (var id in ids)
            {
                var before = output.Length;
                detokenizer.Append(id, output);
                Assert.False(output.Length > before && char.IsHighSurrogate(output[^1]), $"a delta of {text} ends in half a surrogate pair");
            }

            detokenizer.Flush(output);
            Assert.Equal(text, output.ToString());
        }
    }

    [Fact]
    public void Flush_IncompleteCharacter_EmitsReplacement()
    {
        var tokenizer = new BpeTokenizer(ByteLevelVocabulary.Create());
        var ids = tokenizer.Encode("\u4e2d", addSpecial: false); // 3 byte tokens
        var detokenizer = new StreamingDetokenizer(tokenizer);
        var output = new StringBuilder();

        detokenizer.Append(ids[0], output);
        detokenizer.Append(ids[1], output);
        Assert.Equal("", output.ToString());
        detokenizer.Flush(output);

        Assert.Equal("\ufffd", output.ToString());
    }

    [Fact]
    public void Append_ControlToken_EmitsNothingUnlessRendered()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;
        var plain = new StringBuilder();
        var rendered = new StringBuilder();

        new StreamingDetokenizer(tokenizer).Append(128009, plain);
        new StreamingDetokenizer(tokenizer, renderSpecial: true).Append(128009, rendered);

        Assert.Equal("", plain.ToString());
        Assert.Equal("<|eot_id|>", rendered.ToString());
    }

    [Fact]
    public void Reset_AfterHeldBackBytes_StartsClean()
    {
        var tokenizer = new BpeTokenizer(ByteLevelVocabulary.Create());
        var emoji = tokenizer.Encode("\ud83d\ude00", addSpecial: false);
        var detokenizer = new StreamingDetokenizer(tokenizer);
        var output = new StringBuilder();

        detokenizer.Append(emoji[0], output);
        detokenizer.Reset();
        foreach (var id in tokenizer.Encode("ok", addSpecial: false))
        {
            detokenizer.Append(id, output);
        }

        Assert.Equal("ok", output.ToString());
    }

    [Fact]
    public void Append_SteadyState_DoesNotAllocate()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;
        var ids = tokenizer.Encode("The quick brown fox jumps over the lazy dog, \u65e5\u672c\u8a9e.", addSpecial: false);
        var detokenizer = new StreamingDetokenizer(tokenizer);
        var output = new StringBuilder(1024);
        foreach (var id in ids)
        {
            detokenizer.Append(id, output); // warm up
        }

        int next = 0;
        int quiet = SteadyStateAllocations.QuietWindows(
            () =>
            {
                if (next == ids.Length)
                {
                    output.Clear();
                    next = 0;
                }

                detokenizer.Append(ids[next++], output);
            },
            callsPerWindow: ids.Length);

        Assert.Equal(2, quiet);
    }
}
