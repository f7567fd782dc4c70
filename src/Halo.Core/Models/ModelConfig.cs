namespace Halo.Core.Models;

/// <summary>Feed-forward gate activation: SiLU (llama.cpp "bitnet" arch) or squared ReLU (BitNet b1.58 2B4T).</summary>
public enum Activation
{
    Silu,
    Relu2,
}

/// <summary>
/// The hyper-parameters of a BitNet b1.58 model, whatever file it came from (GGUF, safetensors, .h1b).
/// See DESIGN.md section 2 for how each is used in the forward pass.
/// </summary>
public sealed record ModelConfig
{
    public required string Architecture { get; init; }     // "bitnet", "bitnet-b1.58", ...
    public required string Name { get; init; }
    public required int HiddenSize { get; init; }          // d
    public required int FeedForwardSize { get; init; }     // ffn
    public required int LayerCount { get; init; }
    public required int HeadCount { get; init; }
    public required int KvHeadCount { get; init; }
    public required int HeadDim { get; init; }             // usually d / heads
    public required int VocabSize { get; init; }
    public required int ContextLength { get; init; }
    public required float RopeTheta { get; init; }
    public required float RmsNormEps { get; init; }
    public required Activation Activation { get; init; }
    public required bool TiedEmbeddings { get; init; }     // logits = token_embd . x unless output.weight exists
    public bool RandomWeights { get; init; }               // synthetic model: weights are random, output is noise
}
