using Halo.Core.Tokenization;

namespace Halo.Core.Models;

/// <summary>
/// A small byte-level BPE vocabulary for synthetic models: the 256 byte tokens in the GPT-2 byte-to-unicode
/// alphabet (id = byte value), a dozen English merges, the LLaMA-3 special tokens, then reserved special tokens
/// up to the requested size. llama.cpp loads it as a "gpt2"/"llama-bpe" tokenizer.
/// </summary>
public static class ByteLevelVocabulary
{
    public const string BeginOfText = "<|begin_of_text|>";
    public const string EndOfText = "<|end_of_text|>";
    public const string StartHeader = "<|start_header_id|>";
    public const string EndHeader = "<|end_header_id|>";
    public const string EndOfTurn = "<|eot_id|>";

    /// <summary>The LLaMA-3 instruct chat template (Jinja text as the model files carry it).</summary>
    public const string Llama3ChatTemplate =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + "
        + "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
        + "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    private const int NormalType = 1;
    private const int ControlType = 3;

    private static readonly string[] MergePairs =
        ["Ġ t", "h e", "i n", "r e", "o n", "Ġ a", "e r", "Ġt he", "a t", "Ġ s", "e n", "o r"];

    /// <summary>The 256 byte tokens: GPT-2's reversible byte-to-unicode map, indexed by byte.</summary>
    public static string[] ByteTokens()
    {
        var tokens = new string[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            tokens[b] = ((char)(printable ? b : next++)).ToString();
        }

        return tokens;
    }

    /// <summary>The vocabulary, padded with <c>&lt;|reserved_special_token_N|&gt;</c> to at least <paramref name="minimumSize"/>.</summary>
    public static TokenizerModel Create(int minimumSize)
    {
        var tokens = new List<string>(ByteTokens());
        var types = new List<int>(Enumerable.Repeat(NormalType, 256));
        foreach (string merge in MergePairs)
        {
            tokens.Add(merge.Replace(" ", string.Empty, StringComparison.Ordinal));
            types.Add(NormalType);
        }

        int bos = tokens.Count;
        foreach (string special in (string[])[BeginOfText, EndOfText, StartHeader, EndHeader, EndOfTurn])
        {
            tokens.Add(special);
            types.Add(ControlType);
        }

        for (int i = 0; tokens.Count < minimumSize; i++)
        {
            tokens.Add($"<|reserved_special_token_{i}|>");
            types.Add(ControlType);
        }

        return new TokenizerModel
        {
            Model = "gpt2",
            PreTokenizer = "llama-bpe",
            Tokens = tokens,
            Merges = MergePairs,
            TokenTypes = types,
            BosId = bos,
            EosId = bos + 1,
            EotId = bos + 4,
            AddBos = true,
            ChatTemplate = Llama3ChatTemplate,
        };
    }
}
