namespace Halo.Engine.Scheduling;

/// <summary>
/// Picks the next token of one sequence. The scheduler makes one per generation (it holds that request's
/// RNG and penalty state) and calls it on the serving loop, so an implementation must not allocate per call.
/// </summary>
public interface ITokenSampler
{
    /// <param name="logits">The sequence's next-token logits [vocab]; the sampler may change them in place.</param>
    /// <param name="history">Every token of the sequence so far (prompt then generated), for penalties.</param>
    int Sample(Span<float> logits, ReadOnlySpan<int> history);
}
