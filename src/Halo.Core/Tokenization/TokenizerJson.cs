using System.Text.Json;
using Halo.Core.Formats;

namespace Halo.Core.Tokenization;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> (byte-level BPE: vocabulary, merges, added tokens,
/// pre-tokenizer) and, from the same folder, <c>tokenizer_config.json</c> (BOS/EOS, add_bos_token,
/// chat_template) into a <see cref="TokenizerModel"/>. The 9 MB LLaMA-3 file is read in one pass with
/// <see cref="Utf8JsonReader"/>: no document tree, one string per token and merge.
/// </summary>
public static class TokenizerJson
{
    public const string TokenizerFileName = "tokenizer.json";
    public const string ConfigFileName = "tokenizer_config.json";

    // Ids above this are not a vocabulary but a corrupt file; refuse before allocating for them.
    private const int MaxTokenId = 1 << 24;

    // The LLaMA-3 file is 9 MB; the largest public tokenizer.json files are tens of MB.
    private const long MaxFileBytes = 1L << 30;

    // LLaMA-3's split regex as tokenizer.json writes it, and the form llama.cpp's converter spells out.
    private static readonly string[] LlamaBpePatterns =
    [
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ];

    // Names llama.cpp recognises as end-of-turn tokens, in its order of preference.
    private static readonly string[] EndOfTurnNames = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"];

    /// <summary>
    /// Loads <paramref name="path"/>: a tokenizer.json file or a folder holding one. Throws
    /// <see cref="InvalidModelException"/> naming the file and the problem for anything malformed or unsupported.
    /// </summary>
    public static TokenizerModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = Directory.Exists(path) ? Path.Combine(path, TokenizerFileName) : path;
        if (!File.Exists(file))
        {
            throw new InvalidModelException(file, "file not found");
        }

        var size = new FileInfo(file).Length;
        if (size > MaxFileBytes)
        {
            throw new InvalidModelException(file, $"is {size} bytes; a tokenizer.json is at most a few tens of MB (limit {MaxFileBytes})");
        }

        var tokenizer = ReadTokenizer(file, File.ReadAllBytes(file));
        var configFile = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, ConfigFileName);
        var config = File.Exists(configFile) ? ReadConfig(configFile) : new ConfigFields();
        return Build(file, tokenizer, config);
    }

    private static TokenizerModel Build(string file, TokenizerFields tokenizer, ConfigFields config)
    {
        // Tokens by id: the BPE vocabulary, then added tokens (which may repeat vocabulary entries).
        var count = 0;
        foreach (var (_, id) in tokenizer.Vocabulary)
        {
            count = Math.Max(count, id + 1);
        }

        foreach (var added in tokenizer.AddedTokens)
        {
            count = Math.Max(count, added.Id + 1);
        }

        // Ids are dense in any real vocabulary; a few entries with a huge id are a corrupt file, not a reason
        // to allocate a huge table.
        var entries = tokenizer.Vocabulary.Count + tokenizer.AddedTokens.Count;
        if (count > 2L * entries + 1024)
        {
            throw new InvalidModelException(file, $"token ids run up to {count - 1} but there are only {entries} tokens");
        }

        var tokens = new string?[count];
        var types = new int[count];
        foreach (var (text, id) in tokenizer.Vocabulary)
        {
            if (tokens[id] is not null)
            {
                throw new InvalidModelException(file, $"model.vocab gives id {id} to both '{tokens[id]}' and '{text}'");
            }

            tokens[id] = text;
            types[id] = (int)TokenType.Normal;
        }

        var addedByText = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var added in tokenizer.AddedTokens)
        {
            tokens[added.Id] = added.Content;
            types[added.Id] = (int)(added.Special ? TokenType.Control : TokenType.UserDefined);
            addedByText[added.Content] = added.Id;
        }

        // Holes (unusual) become unused placeholders, as llama.cpp's converter writes them.
        for (var id = 0; id < count; id++)
        {
            if (tokens[id] is null)
            {
                tokens[id] = $"[PAD{id}]";
                types[id] = (int)TokenType.Unused;
            }
        }

        var bos = FindToken(config.BosToken, addedByText, tokens);
        var eos = FindToken(config.EosToken, addedByText, tokens);
        var eot = -1;
        foreach (var name in EndOfTurnNames)
        {
            if (addedByText.TryGetValue(name, out var id) && types[id] == (int)TokenType.Control)
            {
                eot = id;
                break;
            }
        }

        return new TokenizerModel
        {
            Model = "gpt2",
            PreTokenizer = tokenizer.PreTokenizer,
            Tokens = tokens!,
            Merges = tokenizer.Merges,
            TokenTypes = types,
            BosId = bos,
            EosId = eos,
            EotId = eot,
            PadId = FindToken(config.PadToken, addedByText, tokens),
            AddBos = config.AddBosToken ?? bos >= 0,
            AddEos = config.AddEosToken ?? false,
            ChatTemplate = config.ChatTemplate,
        };
    }

    private static int FindToken(string? text, Dictionary<string, int> added, string?[] tokens)
    {
        if (text is null)
        {
            return -1;
        }

        if (added.TryGetValue(text, out var id))
        {
            return id;
        }

        return Array.IndexOf(tokens, text);
    }

    // ---- tokenizer.json --------------------------------------------------------------------------------

    private sealed class TokenizerFields
    {
        public List<(string Text, int Id)> Vocabulary { get; } = new(1 << 17);
        public List<string> Merges { get; } = new(1 << 18);
        public List<AddedToken> AddedTokens { get; } = [];
        public string PreTokenizer { get; set; } = "";
        public bool SawModel { get; set; }
        public bool SawVocabulary { get; set; }
    }

    private readonly record struct AddedToken(int Id, string Content, bool Special);

    private static TokenizerFields ReadTokenizer(string file, byte[] json)
    {
        var fields = new TokenizerFields();
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
            Expect(ref reader, JsonTokenType.StartObject, file, "the top level");
            string? preTokenizerProblem = "has no pre_tokenizer";
            while (ReadProperty(ref reader, out var name))
            {
                switch (name)
                {
                    case "model":
                        ReadModel(ref reader, file, fields);
                        break;
                    case "added_tokens":
                        ReadAddedTokens(ref reader, file, fields);
                        break;
                    case "pre_tokenizer":
                        using (var document = JsonDocument.ParseValue(ref reader))
                        {
                            preTokenizerProblem = RecognisePreTokenizer(document.RootElement, out var preTokenizer);
                            fields.PreTokenizer = preTokenizer;
                        }

                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }

            if (!fields.SawModel || !fields.SawVocabulary)
            {
                throw new InvalidModelException(file, "has no model.vocab");
            }

            if (preTokenizerProblem is not null)
            {
                throw new InvalidModelException(file, preTokenizerProblem);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidModelException(file, $"is not a valid tokenizer.json: {e.Message}", e);
        }

        return fields;
    }

    private static void ReadModel(ref Utf8JsonReader reader, string file, TokenizerFields fields)
    {
        Expect(ref reader, JsonTokenType.StartObject, file, "model");
        fields.SawModel = true;
        while (ReadProperty(ref reader, out var name))
        {
            switch (name)
            {
                case "type":
                    reader.Read();
                    var type = reader.GetString();
                    if (type != "BPE")
                    {
                        throw new InvalidModelException(file, $"model.type is '{type}'; Halo reads byte-level BPE tokenizers");
                    }

                    break;
                case "vocab":
                    Expect(ref reader, JsonTokenType.StartObject, file, "model.vocab");
                    fields.SawVocabulary = true;
                    while (ReadProperty(ref reader, out var token))
                    {
                        reader.Read();
                        var id = reader.GetInt32();
                        if (id is < 0 or >= MaxTokenId)
                        {
                            throw new InvalidModelException(file, $"model.vocab id {id} of '{token}' is out of range");
                        }

                        fields.Vocabulary.Add((token, id));
                    }

                    break;
                case "merges":
                    ReadMerges(ref reader, file, fields.Merges);
                    break;
                default:
                    reader.Skip();
                    break;
            }
        }
    }

    // Merges are "a b" strings (older files) or ["a", "b"] pairs (newer files); both become "a b".
    private static void ReadMerges(ref Utf8JsonReader reader, string file, List<string> merges)
    {
        Expect(ref reader, JsonTokenType.StartArray, file, "model.merges");
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType == JsonTokenType.String)
            {
                merges.Add(reader.GetString()!);
                continue;
            }

            if (reader.TokenType != JsonTokenType.StartArray)
            {
                throw new InvalidModelException(file, $"model.merges[{merges.Count}] is neither \"a b\" nor [\"a\", \"b\"]");
            }

            reader.Read();
            var left = reader.GetString();
            reader.Read();
            var right = reader.GetString();
            reader.Read();
            if (left is null || right is null || reader.TokenType != JsonTokenType.EndArray)
            {
                throw new InvalidModelException(file, $"model.merges[{merges.Count}] is not a pair of strings");
            }

            merges.Add(string.Concat(left, " ", right));
        }
    }

    private static void ReadAddedTokens(ref Utf8JsonReader reader, string file, TokenizerFields fields)
    {
        Expect(ref reader, JsonTokenType.StartArray, file, "added_tokens");
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new InvalidModelException(file, $"added_tokens[{fields.AddedTokens.Count}] is not an object");
            }

            int? id = null;
            string? content = null;
            var special = false;
            while (ReadProperty(ref reader, out var name))
            {
                reader.Read();
                switch (name)
                {
                    case "id":
                        id = reader.GetInt32();
                        break;
                    case "content":
                        content = reader.GetString();
                        break;
                    case "special":
                        special = reader.GetBoolean();
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }

            if (id is not { } tokenId || tokenId is < 0 or >= MaxTokenId || string.IsNullOrEmpty(content))
            {
                throw new InvalidModelException(file, $"added_tokens[{fields.AddedTokens.Count}] needs an id in range and a non-empty content");
            }

            fields.AddedTokens.Add(new AddedToken(tokenId, content, special));
        }
    }

    /// <summary>Names the pre-tokenizer (llama.cpp's name for it), or says why it is not one Halo runs.</summary>
    private static string? RecognisePreTokenizer(JsonElement element, out string name)
    {
        name = "";
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty("type", out var type))
        {
            return "pre_tokenizer is missing or has no type";
        }

        if (type.GetString() == "ByteLevel" && (!element.TryGetProperty("use_regex", out var useRegex) || useRegex.GetBoolean()))
        {
            name = "gpt2";
            return null;
        }

        if (type.GetString() == "Sequence" && element.TryGetProperty("pretokenizers", out var steps))
        {
            foreach (var step in steps.EnumerateArray())
            {
                if (step.TryGetProperty("type", out var stepType) && stepType.GetString() == "Split"
                    && step.TryGetProperty("pattern", out var pattern) && pattern.TryGetProperty("Regex", out var regex)
                    && Array.IndexOf(LlamaBpePatterns, regex.GetString()) >= 0)
                {
                    name = "llama-bpe";
                    return null;
                }
            }
        }

        return $"pre_tokenizer {element.GetRawText()} is not one Halo implements (LLaMA-3's 'llama-bpe' split)";
    }

    private static bool ReadProperty(ref Utf8JsonReader reader, out string name)
    {
        if (!reader.Read() || reader.TokenType == JsonTokenType.EndObject)
        {
            name = "";
            return false;
        }

        if (reader.TokenType != JsonTokenType.PropertyName)
        {
            throw new JsonException($"expected a property name at byte {reader.TokenStartIndex}");
        }

        name = reader.GetString()!;
        return true;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType expected, string file, string what)
    {
        if (!reader.Read() || reader.TokenType != expected)
        {
            throw new InvalidModelException(file, $"{what} should be a JSON {(expected == JsonTokenType.StartObject ? "object" : "array")}");
        }
    }

    // ---- tokenizer_config.json -----------------------------------------------------------------------

    private sealed record ConfigFields
    {
        public string? BosToken { get; init; }
        public string? EosToken { get; init; }
        public string? PadToken { get; init; }
        public bool? AddBosToken { get; init; }
        public bool? AddEosToken { get; init; }
        public string? ChatTemplate { get; init; }
    }

    private static ConfigFields ReadConfig(string file)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(file), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidModelException(file, "the top level should be a JSON object");
            }

            return new ConfigFields
            {
                BosToken = TokenContent(root, "bos_token"),
                EosToken = TokenContent(root, "eos_token"),
                PadToken = TokenContent(root, "pad_token"),
                AddBosToken = OptionalBool(root, "add_bos_token"),
                AddEosToken = OptionalBool(root, "add_eos_token"),
                ChatTemplate = ChatTemplateOf(root),
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new InvalidModelException(file, $"is not a valid tokenizer_config.json: {e.Message}", e);
        }
    }

    // "bos_token": "<|begin_of_text|>" or {"content": "<|begin_of_text|>", ...}
    private static string? TokenContent(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var content) => content.GetString(),
            _ => null,
        };
    }

    private static bool? OptionalBool(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : null;

    // A single template string, or a list of named templates of which "default" is the chat one.
    private static string? ChatTemplateOf(JsonElement root)
    {
        if (!root.TryGetProperty("chat_template", out var template))
        {
            return null;
        }

        if (template.ValueKind == JsonValueKind.String)
        {
            return template.GetString();
        }

        if (template.ValueKind == JsonValueKind.Array)
        {
            foreach (var named in template.EnumerateArray())
            {
                if (named.TryGetProperty("name", out var name) && name.GetString() == "default" && named.TryGetProperty("template", out var text))
                {
                    return text.GetString();
                }
            }
        }

        return null;
    }
}
