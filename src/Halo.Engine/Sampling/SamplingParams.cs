namespace Halo.Engine.Sampling;

/// <summary>
/// How to pick the next token from logits. Temperature 0 is greedy. Filters apply in llama.cpp's order:
/// penalties, top-k, top-p, min-p, temperature, then a draw from the seeded RNG.
/// </summary>
public sealed record SamplingParams
{
    public static SamplingParams Greedy { get; } = new() { Temperature = 0f };

    public float Temperature { get; init; } = 0.8f;
    public int TopK { get; init; } = 40;                 // 0 = off
    public float TopP { get; init; } = 0.95f;            // 1 = off
    public float MinP { get; init; } = 0.05f;            // 0 = off
    public float RepetitionPenalty { get; init; } = 1f;  // 1 = off
    public float PresencePenalty { get; init; }
    public float FrequencyPenalty { get; init; }
    public int PenaltyLastN { get; init; } = 64;
    public ulong? Seed { get; init; }
}
