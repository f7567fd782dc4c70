using System.Text.Json;
using Halo.Core.Formats;
using Halo.Core.Tokenization;

namespace Halo.Core.Models;

/// <summary>
/// Reads the parts of a Hugging Face byte-level BPE tokenizer directory (<c>tokenizer.json</c>,
/// <c>tokenizer_config.json</c>) that a GGUF needs: tokens by id, merges, special tokens, BOS/EOS/EOT and the
/// chat template. Token types follow llama.cpp's converter: special added tokens are control (3), other added
/// tokens user-defined (4), the rest normal (1).
/// </summary>
internal static class HfTokenizerFiles
{
    public static TokenizerModel Load(string directory)
    {
        string jsonPath = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(jsonPath))
        {
            throw new InvalidModelException(directory, "tokenizer.json is missing");
        }

        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(jsonPath));
            JsonElement model = doc.RootElement.GetProperty("model");
            string type = model.TryGetProperty("type", out JsonElement t) ? t.GetString() ?? string.Empty : string.Empty;
            if (type != "BPE")
            {
                throw new InvalidModelException(jsonPath, $"model.type is '{type}', only byte-level BPE is supported");
            }

            var byId = new SortedDictionary<int, (string Text, int Type)>();
            foreach (JsonProperty p in model.GetProperty("vocab").EnumerateObject())
            {
                byId[p.Value.GetInt32()] = (p.Name, 1);
            }

            if (doc.RootElement.TryGetProperty("added_tokens", out JsonElement added))
            {
                foreach (JsonElement a in added.EnumerateArray())
                {
                    bool special = a.TryGetProperty("special", out JsonElement s) && s.GetBoolean();
                    byId[a.GetProperty("id").GetInt32()] = (a.GetProperty("content").GetString()!, special ? 3 : 4);
                }
            }

            int count = byId.Count == 0 ? 0 : byId.Keys.Max() + 1;
            var tokens = new string[count];
            var types = new int[count];
            for (int i = 0; i < count; i++)
            {
                // Gaps in the ids get placeholder tokens of type "unused" (5), as llama.cpp's converter does.
                (tokens[i], types[i]) = byId.TryGetValue(i, out var tok) ? tok : ($"[PAD{i}]", 5);
            }

            var merges = new List<string>();
            foreach (JsonElement m in model.GetProperty("merges").EnumerateArray())
            {
                merges.Add(m.ValueKind == JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!);
            }

            (string? bos, string? eos, string? template) = ReadConfig(Path.Combine(directory, "tokenizer_config.json"));
            return new TokenizerModel
            {
                Model = "gpt2",
                PreTokenizer = "llama-bpe",
                Tokens = tokens,
                Merges = merges,
                TokenTypes = types,
                BosId = bos is null ? Array.IndexOf(tokens, ByteLevelVocabulary.BeginOfText) : Array.IndexOf(tokens, bos),
                EosId = eos is null ? Array.IndexOf(tokens, ByteLevelVocabulary.EndOfText) : Array.IndexOf(tokens, eos),
                EotId = Array.IndexOf(tokens, ByteLevelVocabulary.EndOfTurn),
                AddBos = true,
                ChatTemplate = template ?? ByteLevelVocabulary.Llama3ChatTemplate,
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidModelException(jsonPath, $"not a valid tokenizer.json: {e.Message}", e);
        }
    }

    private static (string? Bos, string? Eos, string? Template) ReadConfig(string path)
    {
        if (!File.Exists(path))
        {
            return (null, null, null);
        }

        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(path));
        JsonElement root = doc.RootElement;
        return (TokenText(root, "bos_token"), TokenText(root, "eos_token"),
            root.TryGetProperty("chat_template", out JsonElement c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null);
    }

    // A special token is written either as a string or as {"content": "..."}.
    private static string? TokenText(JsonElement root, string name) =>
        !root.TryGetProperty(name, out JsonElement v) ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out JsonElement c) ? c.GetString()
        : null;
}
