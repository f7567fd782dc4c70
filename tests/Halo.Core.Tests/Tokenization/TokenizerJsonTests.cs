using Halo.Core.Formats;
using Halo.Core.Tokenization;
using Halo.Testing;

namespace Halo.Core.Tests.Tokenization;

public sealed class TokenizerJsonTests
{
    [Fact]
    public void Load_Llama3Folder_ReadsVocabularyMergesAndSpecials()
    {
        var model = Llama3Tokenizer.Model;

        Assert.Equal("gpt2", model.Model);
        Assert.Equal("llama-bpe", model.PreTokenizer);
        Assert.Equal(128256, model.Tokens.Count);
        Assert.Equal(280147, model.Merges.Count);
        Assert.Equal("\u0120\u0120 \u0120\u0120", model.Merges[2]);
        Assert.Equal(128000, model.BosId);
        Assert.Equal(128001, model.EosId);
        Assert.Equal(128009, model.EotId);
        Assert.True(model.AddBos);
        Assert.False(model.AddEos);
        Assert.Equal((int)TokenType.Control, model.TokenTypes![128006]);
        Assert.Equal((int)TokenType.Normal, model.TokenTypes[220]);
        Assert.Contains("<|start_header_id|>", model.ChatTemplate);
    }

    [Fact]
    public void Load_FilePath_SameAsFolder()
    {
        var model = TokenizerJson.Load(Path.Combine(TestPaths.Llama3TokenizerDir, "tokenizer.json"));

        Assert.Equal(Llama3Tokenizer.Model.Tokens.Count, model.Tokens.Count);
        Assert.Equal(Llama3Tokenizer.Model.ChatTemplate, model.ChatTemplate);
    }

    [Fact]
    public void Load_MissingFile_ThrowsNamingIt()
    {
        using var dir = new TempDir();

        var error = Assert.Throws<InvalidModelException>(() => TokenizerJson.Load(dir.Path));
        Assert.Contains("tokenizer.json", error.File);
    }

    [Fact]
    public void Load_TruncatedFile_ThrowsInvalidModel()
    {
        using var dir = new TempDir();
        var bytes = File.ReadAllBytes(Path.Combine(TestPaths.Llama3TokenizerDir, "tokenizer.json"));
        File.WriteAllBytes(dir.File("tokenizer.json"), bytes.AsSpan(0, bytes.Length / 2).ToArray());

        var error = Assert.Throws<InvalidModelException>(() => TokenizerJson.Load(dir.Path));
        Assert.Contains("not a valid tokenizer.json", error.Message);
    }

    [Fact]
    public void Load_SmallTokenizerWithPairMerges_BuildsWorkingTokenizer()
    {
        using var dir = new TempDir();
        WriteTokenizer(dir, merges: """[["h", "i"]]""");
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"bos_token": {"content": "<s>"}, "eos_token": "</s>", "add_bos_token": false, "chat_template": "bitnet"}""");

        var model = TokenizerJson.Load(dir.Path);
        var tokenizer = new BpeTokenizer(model);

        Assert.Equal(["h i"], model.Merges);
        Assert.Equal(3, model.BosId);
        Assert.Equal(4, model.EosId);
        Assert.False(model.AddBos);
        Assert.Equal("bitnet", model.ChatTemplate);
        Assert.Equal([2, 0], tokenizer.Encode("hii", addSpecial: true)); // "hi" then "i"; no BOS
        Assert.Equal([3, 2], tokenizer.Encode("<s>hi", addSpecial: false, parseSpecial: true));
    }

    [Fact]
    public void Load_NonBpeModel_ThrowsNamingType()
    {
        using var dir = new TempDir();
        WriteTokenizer(dir, type: "Unigram");

        var error = Assert.Throws<InvalidModelException>(() => TokenizerJson.Load(dir.Path));
        Assert.Contains("Unigram", error.Message);
    }

    [Fact]
    public void Load_UnknownPreTokenizer_ThrowsNamingIt()
    {
        using var dir = new TempDir();
        WriteTokenizer(dir, preTokenizer: """{"type": "Whitespace"}""");

        var error = Assert.Throws<InvalidModelException>(() => TokenizerJson.Load(dir.Path));
        Assert.Contains("Whitespace", error.Message);
    }

    [Fact]
    public void Load_DuplicateId_ThrowsNamingBothTokens()
    {
        using var dir = new TempDir();
        WriteTokenizer(dir, vocab: """{"i": 0, "h": 0}""");

        var error = Assert.Throws<InvalidModelException>(() => TokenizerJson.Load(dir.Path));
        Assert.Contains("'i'", error.Message);
        Assert.Contains("'h'", error.Message);
    }

    [Fact]
    public void Load_HugeId_ThrowsWithoutAllocating()
    {
        using var dir = new TempDir();
        WriteTokenizer(dir, vocab: """{"i": 2000000000}""");

        var error = Assert.Throws<InvalidModelException>(() => TokenizerJson.Load(dir.Path));
        Assert.Contains("out of range", error.Message);
    }

    [Fact]
    public void Load_SparseIds_ThrowsInsteadOfAllocatingForThem()
    {
        using var dir = new TempDir();
        WriteTokenizer(dir, vocab: """{"i": 0, "h": 10000000}""");

        var error = Assert.Throws<InvalidModelException>(() => TokenizerJson.Load(dir.Path));
        Assert.Contains("only", error.Message);
    }

    [Fact]
    public void Load_MalformedConfig_ThrowsNamingConfig()
    {
        using var dir = new TempDir();
        WriteTokenizer(dir);
        File.WriteAllText(dir.File("tokenizer_config.json"), "{\"bos_token\": ");

        var error = Assert.Throws<InvalidModelException>(() => TokenizerJson.Load(dir.Path));
        Assert.EndsWith("tokenizer_config.json", error.File);
    }

    private static void WriteTokenizer(TempDir dir, string type = "BPE", string vocab = """{"i": 0, "h": 1, "hi": 2}""",
        string merges = """["h i"]""", string? preTokenizer = null)
    {
        preTokenizer ??= """
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
            """;
        File.WriteAllText(dir.File("tokenizer.json"), $$$"""
            {"version": "1.0",
             "added_tokens": [{"id": 3, "content": "<s>", "special": true}, {"id": 4, "content": "</s>", "special": true}],
             "normalizer": null,
             "pre_tokenizer": {{{preTokenizer}}},
             "model": {"type": "{{{type}}}", "ignore_merges": true, "vocab": {{{vocab}}}, "merges": {{{merges}}}}}
            """);
    }
}
