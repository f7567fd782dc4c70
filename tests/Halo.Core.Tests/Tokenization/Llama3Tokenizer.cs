using System.Text.Json;
using Halo.Core.Tokenization;
using Halo.Testing;

namespace Halo.Core.Tests.Tokenization;

/// <summary>The shared LLaMA-3 tokenizer files and llama.cpp's reference tokenizations, loaded once per test run.</summary>
internal static class Llama3Tokenizer
{
    private static readonly Lazy<TokenizerModel> LazyModel = new(() => TokenizerJson.Load(TestPaths.Llama3TokenizerDir));
    private static readonly Lazy<BpeTokenizer> LazyTokenizer = new(() => new BpeTokenizer(LazyModel.Value));
    private static readonly Lazy<JsonElement> LazyCases = new(() =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestPaths.Llama3TokenizerDir, "tokenization-cases.json"))).RootElement);

    public static TokenizerModel Model => LazyModel.Value;

    public static BpeTokenizer Tokenizer => LazyTokenizer.Value;

    /// <summary>(text, ids) that llama.cpp gives with special=false and no BOS.</summary>
    public static IEnumerable<(string Text, int[] Ids)> PlainCases() => Read("cases");

    /// <summary>(text, ids) that llama.cpp gives with special-token parsing on.</summary>
    public static IEnumerable<(string Text, int[] Ids)> SpecialCases() => Read("special_tokens_parsed");

    private static IEnumerable<(string Text, int[] Ids)> Read(string section)
    {
        foreach (var item in LazyCases.Value.GetProperty(section).EnumerateArray())
        {
            var ids = new List<int>();
            foreach (var id in item.GetProperty("ids").EnumerateArray())
            {
                ids.Add(id.GetInt32());
            }

            yield return (item.GetProperty("text").GetString()!, ids.ToArray());
        }
    }
}
