using Halo.Core.Formats;

namespace Halo.Core.Models;

/// <summary>What <see cref="SyntheticModel.Write"/> makes: shapes, weight type, seed and tokenizer.</summary>
public sealed record SyntheticModelSpec
{
    /// <summary>Shapes; <see cref="ModelConfig.VocabSize"/> is the minimum vocabulary (a larger tokenizer wins).</summary>
    public required ModelConfig Config { get; init; }

    /// <summary>The preset the config came from ("tiny", "0.7b", "2b"), or "custom".</summary>
    public string Preset { get; init; } = "custom";

    /// <summary>TQ2_0 or TQ1_0.</summary>
    public GgmlType WeightType { get; init; } = GgmlType.TQ2_0;

    public ulong Seed { get; init; }

    /// <summary>
    /// A directory with a Hugging Face <c>tokenizer.json</c>, or null for the small byte-level vocabulary
    /// (<see cref="Tokenization.ByteLevelVocabulary"/>). Either is padded with reserved special tokens up to
    /// <see cref="ModelConfig.VocabSize"/>.
    /// </summary>
    public string? TokenizerDirectory { get; init; }

    /// <summary>
    /// Relative spread of the TQ block scales around 1 (the tensor's own <c>.scale</c> carries the magnitude).
    /// Real BitNet checkpoints have one scale per tensor, so every block scale is equal (jitter 0), which lets
    /// kernels sum a whole row in integers; tiny keeps 0.25 so the tests exercise per-block scaling against
    /// llama.cpp (its bytes are pinned by the llama.cpp fixtures).
    /// </summary>
    public float BlockScaleJitter { get; init; } = 0.25f;

    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "0.7b", "2b"];

    /// <summary>The spec of a preset; <paramref name="preset"/> is one of <see cref="PresetNames"/>.</summary>
    public static SyntheticModelSpec FromPreset(string preset, GgmlType weightType = GgmlType.TQ2_0, ulong seed = 0, string? tokenizerDirectory = null) =>
        new()
        {
            Config = PresetConfig(preset),
            Preset = preset,
            WeightType = weightType,
            Seed = seed,
            TokenizerDirectory = tokenizerDirectory,
            BlockScaleJitter = preset == "tiny" ? 0.25f : 0f,
        };

    /// <summary>
    /// tiny: runs in milliseconds (tests; its vocabulary of 1024 gives a logits dump of over 1000 values, which
    /// the shared contract check expects); 0.7b: the shapes of 1bitLLM's bitnet_b1_58-large; 2b: the shapes of
    /// BitNet b1.58 2B4T (DESIGN.md section 2). All row lengths are multiples of 256 (the ternary block).
    /// </summary>
    public static ModelConfig PresetConfig(string preset) => preset switch
    {
        "tiny" => Make("tiny", hidden: 256, ffn: 768, layers: 2, heads: 4, kvHeads: 2, vocab: 1024, ctx: 512, theta: 500000f),
        "0.7b" => Make("0.7b", hidden: 1536, ffn: 4096, layers: 24, heads: 16, kvHeads: 16, vocab: 32002, ctx: 2048, theta: 10000f),
        "2b" => Make("2b", hidden: 2560, ffn: 6912, layers: 30, heads: 20, kvHeads: 5, vocab: 128256, ctx: 4096, theta: 500000f),
        _ => throw new ArgumentException($"unknown preset '{preset}' (use {string.Join(", ", PresetNames)})", nameof(preset)),
    };

    private static ModelConfig Make(string preset, int hidden, int ffn, int layers, int heads, int kvHeads, int vocab, int ctx, float theta) => new()
    {
        Architecture = "bitnet",
        Name = $"halo-synthetic-{preset}",
        HiddenSize = hidden,
        FeedForwardSize = ffn,
        LayerCount = layers,
        HeadCount = heads,
        KvHeadCount = kvHeads,
        HeadDim = hidden / heads,
        VocabSize = vocab,
        ContextLength = ctx,
        RopeTheta = theta,
        RmsNormEps = 1e-5f,
        Activation = Activation.Silu,
        TiedEmbeddings = true,
        RandomWeights = true,
    };
}
