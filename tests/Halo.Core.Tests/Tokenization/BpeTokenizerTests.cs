using Halo.Core.Tokenization;

namespace Halo.Core.Tests.Tokenization;

public sealed class BpeTokenizerTests
{
    public static TheoryData<int> PlainCaseIndexes() => Indexes(Llama3Tokenizer.PlainCases().Count());

    public static TheoryData<int> SpecialCaseIndexes() => Indexes(Llama3Tokenizer.SpecialCases().Count());

    [Theory]
    [MemberData(nameof(PlainCaseIndexes))]
    public void Encode_Llama3ReferenceCase_MatchesLlamaCpp(int index)
    {
        var (text, expected) = Llama3Tokenizer.PlainCases().ElementAt(index);

        var ids = Llama3Tokenizer.Tokenizer.Encode(text, addSpecial: false, parseSpecial: false);

        Assert.True(expected.SequenceEqual(ids), $"{Show(text)}: expected [{string.Join(", ", expected)}], got [{string.Join(", ", ids)}]");
    }

    [Theory]
    [MemberData(nameof(SpecialCaseIndexes))]
    public void Encode_Llama3SpecialCaseWithParseSpecial_MatchesLlamaCpp(int index)
    {
        var (text, expected) = Llama3Tokenizer.SpecialCases().ElementAt(index);

        var ids = Llama3Tokenizer.Tokenizer.Encode(text, addSpecial: false, parseSpecial: true);

        Assert.Equal(expected, ids);
    }

    [Fact]
    public void Encode_ReferenceCasesHaveTheExpectedCount_AllPresent()
    {
        Assert.Equal(58, Llama3Tokenizer.PlainCases().Count());
        Assert.Equal(2, Llama3Tokenizer.SpecialCases().Count());
    }

    [Theory]
    [MemberData(nameof(PlainCaseIndexes))]
    public void Decode_Llama3ReferenceCase_GivesBackTheText(int index)
    {
        var (text, ids) = Llama3Tokenizer.PlainCases().ElementAt(index);

        Assert.Equal(text, Llama3Tokenizer.Tokenizer.Decode(ids));
    }

    [Fact]
    public void Encode_CapitalOfFranceWithSpecial_PutsBosFirst()
    {
        var ids = Llama3Tokenizer.Tokenizer.Encode("The capital of France is");

        Assert.Equal([128000, 791, 6864, 315, 9822, 374], ids);
    }

    [Fact]
    public void Encode_ControlTokenTextWithoutParseSpecial_StaysText()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;

        var ids = tokenizer.Encode("Hi<|eot_id|>", addSpecial: false, parseSpecial: false);

        Assert.DoesNotContain(128009, ids);
        Assert.Equal("Hi<|eot_id|>", tokenizer.Decode(ids));
    }

    [Fact]
    public void Encode_ControlTokenTextWithParseSpecial_BecomesTheToken()
    {
        var ids = Llama3Tokenizer.Tokenizer.Encode("Hi<|eot_id|>", addSpecial: false, parseSpecial: true);

        Assert.Equal([13347, 128009], ids);
    }

    [Fact]
    public void Encode_AdjacentAndOverlappingLookingSpecials_SplitLikeLlamaCpp()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;

        var ids = tokenizer.Encode("<|eot_id|><|eot_id|>x<|eot_id", addSpecial: false, parseSpecial: true);

        Assert.Equal(128009, ids[0]);
        Assert.Equal(128009, ids[1]);
        Assert.Equal("x<|eot_id", tokenizer.Decode(ids.AsSpan(2)));
    }

    [Theory]
    [InlineData("zqxj", 250)]
    [InlineData("hello", 200)]
    [InlineData("éßç", 300)]
    public void Encode_LongWordWithoutWholeToken_EqualsReferenceBpe(string unit, int repeats)
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;
        var text = string.Concat(Enumerable.Repeat(unit, repeats));

        var ids = tokenizer.Encode(text, addSpecial: false);

        Assert.Equal(ReferenceBpe.EncodeWord(Llama3Tokenizer.Model, text), ids);
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void Encode_ManyThreadsOnAFreshTokenizer_SameIdsAsOneThread()
    {
        var texts = Llama3Tokenizer.PlainCases().Select(c => c.Text)
            .Append(string.Concat(Enumerable.Repeat("zqxjhello\u00e9", 50))).ToArray();
        var expected = texts.Select(t => Llama3Tokenizer.Tokenizer.Encode(t, addSpecial: false)).ToArray();
        var fresh = new BpeTokenizer(Llama3Tokenizer.Model); // merged ids not yet resolved: threads race to fill them

        var mismatches = 0;
        Parallel.For(0, 32, worker =>
        {
            for (var i = 0; i < texts.Length; i++)
            {
                var index = (i + worker) % texts.Length;
                if (!expected[index].SequenceEqual(fresh.Encode(texts[index], addSpecial: false)))
                {
                    Interlocked.Increment(ref mismatches);
                }
            }
        });

        Assert.Equal(0, mismatches);
    }

    [Fact]
    public void Encode_HugeWhitespaceRun_MergesAndRoundTrips()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;
        var text = new string(' ', 200_000) + "x";

        var ids = tokenizer.Encode(text, addSpecial: false);

        Assert.True(ids.Length < 200_000 / 8, $"{ids.Length} tokens");
        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void Encode_UserDefinedTokenWithoutParseSpecial_IsStillMatched()
    {
        var byteLevel = ByteLevelVocabulary.Create();
        var tokens = byteLevel.Tokens.Append("<tool>").ToArray();
        var types = byteLevel.TokenTypes!.Append((int)TokenType.UserDefined).ToArray();
        var tokenizer = new BpeTokenizer(byteLevel with { Tokens = tokens, TokenTypes = types });

        var ids = tokenizer.Encode("a<tool>b<|eot_id|>", addSpecial: false, parseSpecial: false);

        Assert.Equal(tokens.Length - 1, ids[1]);
        Assert.DoesNotContain(byteLevel.EotId, ids);
        Assert.Equal("a<tool>b<|eot_id|>", tokenizer.Decode(ids));
    }

    [Fact]
    public void Encode_OverlappingSpecialTokens_TakesTheLongestWhereverItsIdIs()
    {
        // Listed shortest first and out of id order, so a match in list or id order would take "<t" or "<to".
        var byteLevel = ByteLevelVocabulary.Create();
        string[] specials = ["<t", "<tool>", "<to", "<tool"];
        var tokens = byteLevel.Tokens.Concat(specials).ToArray();
        var types = byteLevel.TokenTypes!.Concat(specials.Select(_ => (int)TokenType.UserDefined)).ToArray();
        var tokenizer = new BpeTokenizer(byteLevel with { Tokens = tokens, TokenTypes = types });
        int first = byteLevel.Tokens.Count;

        var ids = tokenizer.Encode("<tool><tool<to<t", addSpecial: false, parseSpecial: false);

        Assert.Equal([first + 1, first + 3, first + 2, first], ids);
    }

    [Fact]
    public void Encode_HundredThousandSpecialTokens_StaysLinear()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;
        var text = string.Concat(Enumerable.Repeat("a<|eot_id|>", 100_000));

        var ids = tokenizer.Encode(text, addSpecial: false, parseSpecial: true);

        Assert.Equal(200_000, ids.Length);
        Assert.Equal(100_000, ids.Count(id => id == 128009));
    }

    [Fact]
    public void Encode_LoneSurrogate_EncodesAsReplacementCharacter()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;

        var ids = tokenizer.Encode("a\uD800b", addSpecial: false);

        Assert.Equal(tokenizer.Encode("a\uFFFDb", addSpecial: false), ids);
    }

    [Fact]
    public void Decode_ControlTokens_HiddenUnlessRendered()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;
        int[] ids = [128000, 13347, 128009];

        Assert.Equal("Hi", tokenizer.Decode(ids));
        Assert.Equal("<|begin_of_text|>Hi<|eot_id|>", tokenizer.Decode(ids, renderSpecial: true));
    }

    [Fact]
    public void Decode_HalfOfAMultiByteCharacter_GivesReplacementCharacter()
    {
        var tokenizer = new BpeTokenizer(ByteLevelVocabulary.Create());
        var emoji = tokenizer.Encode("\ud83d\ude00", addSpecial: false);

        Assert.Equal("\ufffd", tokenizer.Decode(emoji.AsSpan(0, 2)));
    }

    [Fact]
    public void Constructor_WithoutTokenTypes_TreatsDeclaredSpecialsAsControl()
    {
        var model = ByteLevelVocabulary.Create() with { TokenTypes = null };
        var tokenizer = new BpeTokenizer(model);

        Assert.Equal(TokenType.Control, tokenizer.TokenTypeOf(model.EotId));
        Assert.Equal(TokenType.Normal, tokenizer.TokenTypeOf(0));
        Assert.Equal([model.EotId], tokenizer.Encode("<|eot_id|>", addSpecial: false, parseSpecial: true));
    }

    [Fact]
    public void Decode_IdOutsideVocabulary_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Llama3Tokenizer.Tokenizer.Decode([128256]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Llama3Tokenizer.Tokenizer.Decode([-1]));
    }

    [Fact]
    public void TokenBytes_SpaceToken_IsTheSpaceByte()
    {
        Assert.Equal(" "u8.ToArray(), Llama3Tokenizer.Tokenizer.TokenBytes(220).ToArray());
        Assert.Equal("<|eot_id|>"u8.ToArray(), Llama3Tokenizer.Tokenizer.TokenBytes(128009).ToArray());
    }

    [Fact]
    public void EndOfGenerationIds_Llama3_AreEosAndEot()
    {
        var tokenizer = Llama3Tokenizer.Tokenizer;

        Assert.Equal([128001, 128009], tokenizer.EndOfGenerationIds.ToArray());
        Assert.True(tokenizer.IsEndOfGeneration(128009));
        Assert.False(tokenizer.IsEndOfGeneration(128000));
    }

    [Fact]
    public void TryGetTokenId_SpecialTokenName_FindsIt()
    {
        Assert.True(Llama3Tokenizer.Tokenizer.TryGetTokenId("<|start_header_id|>", out var id));
        Assert.Equal(128006, id);
        Assert.False(Llama3Tokenizer.Tokenizer.TryGetTokenId("<|no_such_token|>", out _));
    }

    [Fact]
    public void Constructor_NonBpeModel_ThrowsNotSupported()
    {
        var model = ByteLevelVocabulary.Create() with { Model = "llama" };

        var error = Assert.Throws<NotSupportedException>(() => new BpeTokenizer(model));
        Assert.Contains("'llama'", error.Message);
    }

    [Fact]
    public void Constructor_UnknownPreTokenizer_ThrowsNotSupported()
    {
        var model = ByteLevelVocabulary.Create() with { PreTokenizer = "qwen2" };

        var error = Assert.Throws<NotSupportedException>(() => new BpeTokenizer(model));
        Assert.Contains("'qwen2'", error.Message);
    }

    [Fact]
    public void Constructor_TokenTypesCountMismatch_ThrowsArgument()
    {
        var model = ByteLevelVocabulary.Create() with { TokenTypes = [1, 1, 1] };

        var error = Assert.Throws<ArgumentException>(() => new BpeTokenizer(model));
        Assert.Contains("token types", error.Message);
    }

    [Fact]
    public void Constructor_BosOutsideVocabulary_ThrowsArgument()
    {
        var model = ByteLevelVocabulary.Create() with { BosId = 1_000_000 };

        var error = Assert.Throws<ArgumentException>(() => new BpeTokenizer(model));
        Assert.Contains("BOS", error.Message);
    }

    [Fact]
    public void Constructor_MalformedMerge_ThrowsArgumentNamingIt()
    {
        var model = ByteLevelVocabulary.Create() with { Merges = ["ab"] };

        var error = Assert.Throws<ArgumentException>(() => new BpeTokenizer(model));
        Assert.Contains("'ab'", error.Message);
    }

    private static TheoryData<int> Indexes(int count)
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < count; i++)
        {
            data.Add(i);
        }

        return data;
    }

    private static string Show(string text) => System.Text.Json.JsonSerializer.Serialize(text);
}
