using System.Text;
using BenchmarkDotNet.Attributes;
using Halo.Core.Tokenization;

namespace Halo.Benchmarks.Tokenization;

/// <summary>
/// Loading the LLaMA-3 tokenizer (128k tokens, 280k merges; goal: well under 100 ms) and encoding and
/// streaming-decoding a mixed 4 KB prompt. Run: dotnet run -c Release --project tests/Halo.Benchmarks -- --filter '*Tokenizer*'
/// </summary>
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    private const string Paragraph =
        "The quick brown fox jumps over the lazy dog. In 2024, 1,234 people said: \"I'm fine\" \u2014 \u00e7a va? "
        + "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8. \ud83d\ude00\n    def square(x):\n        return x ** 2\n";

    private string _directory = "";
    private TokenizerModel _model = null!;
    private BpeTokenizer _tokenizer = null!;
    private string _prompt = "";
    private int[] _ids = [];
    private readonly StringBuilder _output = new(8192);

    [GlobalSetup]
    public void Setup()
    {
        _directory = Llama3Directory();
        _model = TokenizerJson.Load(_directory);
        _tokenizer = new BpeTokenizer(_model);
        var prompt = new StringBuilder();
        while (prompt.Length < 4096)
        {
            prompt.Append(Paragraph);
        }

        _prompt = prompt.ToString();
        _ids = _tokenizer.Encode(_prompt, addSpecial: false);
    }

    /// <summary>tokenizer.json + tokenizer_config.json to a ready tokenizer: the cold-start cost.</summary>
    [Benchmark]
    public BpeTokenizer LoadFromTokenizerJson() => new(TokenizerJson.Load(_directory));

    /// <summary>Building from an already-read vocabulary: the cost on top of reading GGUF metadata.</summary>
    [Benchmark]
    public BpeTokenizer BuildFromModel() => new(_model);

    [Benchmark]
    public int[] Encode4KbPrompt() => _tokenizer.Encode(_prompt, addSpecial: true);

    [Benchmark]
    public int StreamDecode4KbPrompt()
    {
        _output.Clear();
        var detokenizer = new StreamingDetokenizer(_tokenizer);
        foreach (var id in _ids)
        {
            detokenizer.Append(id, _output);
        }

        return _output.Length;
    }

    // HALO_SHARED_DIR, else ../shared beside the repository holding Halo.Appliance.sln (as the tests find it).
    private static string Llama3Directory()
    {
        if (Environment.GetEnvironmentVariable("HALO_SHARED_DIR") is { Length: > 0 } shared)
        {
            return Path.Combine(shared, "tokenizers", "llama3");
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Halo.Appliance.sln")))
            {
                return Path.Combine(dir.FullName, "..", "shared", "tokenizers", "llama3");
            }
        }

        throw new InvalidOperationException("Halo.Appliance.sln not found above " + AppContext.BaseDirectory + "; set HALO_SHARED_DIR.");
    }
}
