using Halo.Core.Tokenization;

namespace Halo.Core.Tests.Tokenization;

public sealed class ByteLevelVocabularyTests
{
    [Fact]
    public void Create_NoMerges_HasByteTokensThenLlama3Specials()
    {
        var model = ByteLevelVocabulary.Create();

        Assert.Equal(261, model.Tokens.Count);
        Assert.Equal("<|begin_of_text|>", model.Tokens[model.BosId]);
        Assert.Equal("<|end_of_text|>", model.Tokens[model.EosId]);
        Assert.Equal("<|eot_id|>", model.Tokens[model.EotId]);
        Assert.Contains("<|start_header_id|>", model.Tokens);
        Assert.Contains("<|end_header_id|>", model.Tokens);
        Assert.Equal((int)TokenType.Control, model.TokenTypes![model.BosId]);
        Assert.NotNull(model.ChatTemplate);
    }

    [Fact]
    public void Create_ByteTokenIds_MatchLlama3Numbering()
    {
        var model = ByteLevelVocabulary.Create();
        var llama3 = Llama3Tokenizer.Model;

        for (var id = 0; id < 256; id++)
        {
            Assert.Equal(llama3.Tokens[id], model.Tokens[id]);
        }
    }

    [Fact]
    public void Encode_AnyTextWithoutMerges_IsOneTokenPerByteAndRoundTrips()
    {
        var tokenizer = new BpeTokenizer(ByteLevelVocabulary.Create());
        const string text = "Hi, wörld 👋\n";

        var ids = tokenizer.Encode(text, addSpecial: false);

        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), ids.Length);
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void Encode_WithMerges_UsesMergedTokens()
    {
        var model = ByteLevelVocabulary.Create([("t", "h"), ("th", "e"), (" ", "the")]);
        var tokenizer = new BpeTokenizer(model);

        var ids = tokenizer.Encode("the other", addSpecial: true);

        // "the" is a whole token; " other" merges t+h, th+e inside it and keeps " " and "o", "r" as bytes.
        Assert.True(tokenizer.TryGetTokenId("the", out var the));
        int[] expected = [model.BosId, the, Byte(' '), Byte('o'), the, Byte('r')];
        Assert.Equal(expected, ids);
        Assert.Equal("the other", tokenizer.Decode(ids));

        int Byte(char c) => tokenizer.Encode(c.ToString(), addSpecial: false).Single();
    }

    [Fact]
    public void Create_MergeOfUnknownPieces_ThrowsArgument()
    {
        var error = Assert.Throws<ArgumentException>(() => ByteLevelVocabulary.Create([("th", "e")]));
        Assert.Contains("'th'", error.Message);
    }
}
