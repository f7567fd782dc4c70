using Halo.Engine.Sampling;

namespace Halo.Engine.Scheduling;

/// <summary>What to generate: the prompt as token ids and when to stop. The engine knows no text; stop strings
/// are the caller's (it cancels the generation when its detokenized text hits one).</summary>
public sealed record GenerationRequest
{
    public required int[] PromptTokens { get; init; }

    /// <summary>Most tokens to generate; clamped to what the context has left (finish reason length).
    /// 0 = until the context is full.</summary>
    public int MaxTokens { get; init; }

    public SamplingParams Sampling { get; init; } = SamplingParams.Greedy;

    /// <summary>Token ids that end the generation with finish reason stop (EOS, EOT); not emitted.</summary>
    public int[] StopTokens { get; init; } = [];

    /// <summary>-1: no log-probabilities; 0: the chosen token's; n: also the n most likely alternatives.</summary>
    public int TopLogprobs { get; init; } = -1;
}

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>A stop token was sampled, or the caller ended it at a stop string.</summary>
    Stop,

    /// <summary>max_tokens reached, or the context is full.</summary>
    Length,

    /// <summary>The client went away, or the drain timeout cut it.</summary>
    Cancelled,
}

/// <summary>A candidate token with its log-probability.</summary>
public readonly record struct TokenLogprob(int TokenId, float Logprob);

/// <summary>One generated token: its log-probability (0 unless asked for), the alternatives (null unless asked
/// for) and the <see cref="System.Diagnostics.Stopwatch"/> timestamp of the step that made it.</summary>
public readonly record struct GeneratedToken(int TokenId, float Logprob, TokenLogprob[]? Top, long Timestamp);

/// <summary>The answer to <see cref="BatchScheduler.TrySubmit"/>.</summary>
public enum SubmitStatus
{
    Accepted,

    /// <summary>All slots busy and the queue full: the caller should answer 429.</summary>
    QueueFull,

    /// <summary>The prompt does not fit in a slot's context: the caller should answer 400.</summary>
    ContextOverflow,

    /// <summary>Draining for shutdown: the caller should answer 503.</summary>
    ShuttingDown,
}
