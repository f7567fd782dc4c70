using Halo.Engine.Sampling;

namespace Halo.Engine.Scheduling;

/// <summary>The engine's <see cref="Sampler"/> as the scheduler's per-sequence sampler: feeds it the tokens of
/// the sequence it has not seen yet (prompt first, then each generated token) for the penalties, then samples.
/// Allocation-free per token, as the sampler is.</summary>
public sealed class SequenceSampler(Sampler sampler) : ITokenSampler
{
    private int _accepted;

    public int Sample(Span<float> logits, ReadOnlySpan<int> history)
    {
        for (; _accepted < history.Length; _accepted++)
        {
            sampler.Accept(history[_accepted]);
        }

        return sampler.Sample(logits);
    }
}
