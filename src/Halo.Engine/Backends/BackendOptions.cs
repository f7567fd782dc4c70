using Halo.Core.Models;
using Halo.Engine.Profiling;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends;

/// <summary>Which backend runs the forward pass: auto picks CUDA > OpenCL > CPU SIMD.</summary>
public enum BackendKind
{
    Auto,
    Cpu,
    Gpu,
}

/// <summary>
/// Numerics of the forward pass. <see cref="Halo"/> is Halo's fastest path; <see cref="LlamaCpp"/> follows
/// llama.cpp's CPU path (Q8_K-style int8 activations per 256-block, F16 KV cache, F16-rounded LM-head input)
/// so results compare exactly with llama.cpp (`halo run --compat llamacpp`).
/// </summary>
public enum NumericsMode
{
    Halo,
    LlamaCpp,
}

/// <summary>How the CPU backend stores the LM head (the largest matrix read per token).</summary>
public enum LmHeadPrecision
{
    /// <summary>As the file stores it (F16 / BF16 / F32): exact.</summary>
    Source,

    /// <summary>Int8 with a scale per row, input int8 per token: half the bytes of F16.</summary>
    Int8,

    /// <summary>Symmetric 4-bit with an 8-bit scale per 32 columns and a float scale per row, input int8 per
    /// token: about a quarter of the bytes of F16 (4.3 bits per weight).</summary>
    Int4,

    /// <summary>Symmetric 6-bit with an 8-bit scale per 32 columns and a float scale per row, input int8 per token
    /// with its step set per class of columns: 0.39 of F16's bytes (6.3 bits per weight), a third of int8's KL
    /// divergence from the exact head. The default in Halo numerics.</summary>
    Int6,
}

/// <summary>The names of <see cref="LmHeadPrecision"/> in config files and flags.</summary>
public static class LmHeadPrecisions
{
    public static readonly string[] Names = ["source", "int8", "int6", "int4"];

    /// <summary>source, int8, int6 or int4; null or empty = the numerics mode's own choice.</summary>
    public static LmHeadPrecision? Parse(string? name) => name switch
    {
        null or "" => null,
        "source" => LmHeadPrecision.Source,
        "int8" => LmHeadPrecision.Int8,
        "int6" => LmHeadPrecision.Int6,
        "int4" => LmHeadPrecision.Int4,
        _ => throw new ArgumentException($"'{name}' is not an LM head precision (source, int8, int6 or int4)", nameof(name)),
    };
}

/// <summary>How to build a backend for a model.</summary>
public sealed record BackendOptions
{
    public BackendKind Kind { get; init; } = BackendKind.Auto;
    public int Threads { get; init; } = Environment.ProcessorCount;
    public int MaxSlots { get; init; } = 1;               // sequences with their own KV cache
    public int ContextLength { get; init; }               // 0 = the model's context length
    public NumericsMode Numerics { get; init; } = NumericsMode.Halo;
    public Activation? ActivationOverride { get; init; }  // config or --act overrides the model's own

    /// <summary>Int8 activation scaling for ternary matmuls; null = the numerics mode's own (Halo: per token,
    /// as BitNet was trained; LlamaCpp: per 256-block).</summary>
    public ActivationScaling? ActivationScaling { get; init; }

    /// <summary>LM head storage; null = the numerics mode's own (Halo: Int6; LlamaCpp: Source).</summary>
    public LmHeadPrecision? LmHead { get; init; }

    /// <summary>Most tokens one forward step processes at once (prefill is split into batches of this size).</summary>
    public int MaxBatchTokens { get; init; } = 512;

    /// <summary>Where repacked weights are kept between runs (null: repack every time). See <see cref="RepackCache"/>.</summary>
    public RepackCache? RepackCache { get; init; }

    /// <summary>When set, the backend records how long each phase of its construction took.</summary>
    public LoadTimings? LoadTimings { get; init; }
}
