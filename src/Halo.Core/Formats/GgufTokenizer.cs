using Halo.Core.Tokenization;

namespace Halo.Core.Formats;

/// <summary>Reads and writes the llama.cpp tokenizer metadata (<c>tokenizer.ggml.*</c>, <c>tokenizer.chat_template</c>).</summary>
public static class GgufTokenizer
{
    public const string ModelKey = "tokenizer.ggml.model";
    public const string PreKey = "tokenizer.ggml.pre";
    public const string TokensKey = "tokenizer.ggml.tokens";
    public const string TokenTypeKey = "tokenizer.ggml.token_type";
    public const string MergesKey = "tokenizer.ggml.merges";
    public const string BosKey = "tokenizer.ggml.bos_token_id";
    public const string EosKey = "tokenizer.ggml.eos_token_id";
    public const string EotKey = "tokenizer.ggml.eot_token_id";
    public const string PadKey = "tokenizer.ggml.padding_token_id";
    public const string AddBosKey = "tokenizer.ggml.add_bos_token";
    public const string ChatTemplateKey = "tokenizer.chat_template";

    /// <summary>The tokenizer in the metadata, or null when the file carries none.</summary>
    public static TokenizerModel? Read(GgufMetadata m)
    {
        string? model = m.GetStringOrNull(ModelKey);
        if (model is null)
        {
            return null;
        }

        string[] tokens = m.GetArrayOrNull<string>(TokensKey)
            ?? throw new InvalidModelException(m.File, $"metadata '{TokensKey}' is missing although '{ModelKey}' is set");
        int[]? types = m.GetInt32ArrayOrNull(TokenTypeKey);
        if (types is not null && types.Length != tokens.Length)
        {
            throw new InvalidModelException(m.File, $"metadata '{TokenTypeKey}' has {types.Length} entries for {tokens.Length} tokens");
        }

        int eot = TokenId(m, EotKey, tokens.Length);
        if (eot < 0)
        {
            // llama.cpp finds the end-of-turn token by its text when the id is not stored.
            eot = Array.IndexOf(tokens, "<|eot_id|>");
        }

        return new TokenizerModel
        {
            Model = model,
            PreTokenizer = m.GetStringOrNull(PreKey) ?? "default",
            Tokens = tokens,
            Merges = m.GetArrayOrNull<string>(MergesKey) ?? [],
            TokenTypes = types,
            BosId = TokenId(m, BosKey, tokens.Length),
            EosId = TokenId(m, EosKey, tokens.Length),
            EotId = eot,
            PadId = TokenId(m, PadKey, tokens.Length),
            AddBos = m.GetBoolOrNull(AddBosKey) ?? true,
            ChatTemplate = m.GetStringOrNull(ChatTemplateKey),
        };
    }

    /// <summary>Writes the tokenizer as llama.cpp expects it (ids as uint32, token types as int32).</summary>
    public static void Write(GgufMetadata m, TokenizerModel t)
    {
        m.Set(ModelKey, t.Model);
        m.Set(PreKey, t.PreTokenizer);
        m.Set(TokensKey, GgufValue.StringArray([.. t.Tokens]));
        if (t.TokenTypes is not null)
        {
            m.Set(TokenTypeKey, GgufValue.Int32Array([.. t.TokenTypes]));
        }

        m.Set(MergesKey, GgufValue.StringArray([.. t.Merges]));
        SetId(m, BosKey, t.BosId);
        SetId(m, EosKey, t.EosId);
        SetId(m, EotKey, t.EotId);
        SetId(m, PadKey, t.PadId);
        m.Set(AddBosKey, t.AddBos);
        if (t.ChatTemplate is not null)
        {
            m.Set(ChatTemplateKey, t.ChatTemplate);
        }
    }

    private static void SetId(GgufMetadata m, string key, int id)
    {
        if (id >= 0)
        {
            m.Set(key, (uint)id);
        }
    }

    private static int TokenId(GgufMetadata m, string key, int vocab)
    {
        long? id = m.GetInt64OrNull(key);
        return id switch
        {
            null => -1,
            >= 0 when id < vocab => (int)id.Value,
            _ => throw new InvalidModelException(m.File, $"metadata '{key}' = {id} is not a token id (vocabulary has {vocab})"),
        };
    }
}
