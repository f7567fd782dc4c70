namespace Halo.Core.Tokenization;

/// <summary>
/// The raw vocabulary of a byte-level BPE tokenizer as a model file stores it (GGUF metadata or
/// tokenizer.json): token strings in the GPT-2 byte-to-unicode alphabet, merges ("a b"), token types and
/// special token ids. <see cref="BpeTokenizer"/> is built from it.
/// </summary>
public sealed record TokenizerModel
{
    public required string Model { get; init; }                 // "gpt2" (byte-level BPE)
    public required string PreTokenizer { get; init; }          // "llama-bpe", ...
    public required IReadOnlyList<string> Tokens { get; init; }
    public required IReadOnlyList<string> Merges { get; init; }
    public IReadOnlyList<int>? TokenTypes { get; init; }        // llama.cpp token types: 1 normal, 3 control, 4 user-defined, 6 byte (see TokenType)
    public int BosId { get; init; } = -1;
    public int EosId { get; init; } = -1;
    public int EotId { get; init; } = -1;
    public int PadId { get; init; } = -1;
    public bool AddBos { get; init; } = true;
    public bool AddEos { get; init; }                           // GGUF tokenizer.ggml.add_eos_token; false for LLaMA-3
    public string? ChatTemplate { get; init; }
}
