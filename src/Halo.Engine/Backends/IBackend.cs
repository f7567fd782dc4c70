using Halo.Core.Models;

namespace Halo.Engine.Backends;

/// <summary>
/// One step of work for one sequence: append <see cref="Tokens"/> to the KV cache of <see cref="Slot"/>
/// starting at position <see cref="StartPosition"/> (prefill chunk: many tokens; decode: one token).
/// </summary>
public readonly record struct SequenceChunk(int Slot, int StartPosition, ReadOnlyMemory<int> Tokens);

/// <summary>What a backend runs on, for logs, metrics (<c>halo_model_info</c>) and <c>halo run --json</c>.</summary>
public sealed record BackendInfo(string Name, string Device);

/// <summary>
/// Runs the whole BitNet forward pass (DESIGN.md section 2) for a batch of sequences. A backend owns the
/// weights in the layout its kernels want and a KV cache of <see cref="MaxSlots"/> sequences of
/// <see cref="ContextLength"/> positions. The CPU SIMD backend lives in this project; the ILGPU backend in
/// Halo.Kernels. Callers (the generator, the scheduler) never see per-op details: one call per step, so a GPU
/// backend synchronises with the host once per step at most.
/// </summary>
public interface IBackend : IDisposable
{
    BackendInfo Info { get; }

    ModelConfig Config { get; }

    int MaxSlots { get; }

    int ContextLength { get; }

    /// <summary>
    /// Runs every chunk through the model, writing each chunk's tokens into its slot's KV cache, and writes
    /// the logits of each chunk's last token to <paramref name="logits"/> row i ([chunks.Length, vocab]).
    /// Chunks of one call name distinct slots. Positions past <see cref="ContextLength"/> are the caller's
    /// error (checked before the call, reported as context overflow).
    /// </summary>
    void Forward(ReadOnlySpan<SequenceChunk> chunks, Span<float> logits);

    /// <summary>
    /// While set, forward steps run the first layer only, then the output norm and the LM head: every kernel of a step
    /// runs, so the JIT has compiled it, and the step's buffers are touched, without reading the other layers' weights.
    /// For the daemon's warm-up, whose logits nobody reads; the KV cache holds only the first layer's entries of the
    /// positions written meanwhile, so those positions must be written again before they are attended to. Backends that
    /// compile their kernels at load (the GPU's) ignore it.
    /// </summary>
    bool WarmingUp
    {
        get => false;
        set { }
    }
}
