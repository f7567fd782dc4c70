using Halo.Core.Configuration;
using Halo.Engine.Sampling;
using Halo.Engine.Scheduling;
using Halo.Server.Inference;
using Halo.Server.Metrics;

namespace Halo.Server.OpenAi;

/// <summary>What every API endpoint needs: the runtime, the options, the metrics; and the common steps of
/// turning a validated request into a running generation.</summary>
internal sealed class ServingContext(ModelRuntime runtime, HaloOptions options, HaloMetrics metrics)
{
    public ModelRuntime Runtime { get; } = runtime;

    public HaloOptions Options { get; } = options;

    public HaloMetrics Metrics { get; } = metrics;

    /// <summary>The served model, or 503 while loading or draining.</summary>
    public LoadedModel RequireReady()
    {
        return Runtime.State switch
        {
            ServingState.Ready when Runtime.Model is { } model => model,
            ServingState.Draining => throw new ApiException(503, "the server is shutting down", code: "draining"),
            _ => throw new ApiException(503, "the model is still loading", code: "loading") { RetryAfterSeconds = 1 },
        };
    }

    /// <summary>A request naming another model gets 404 (an empty or absent name means this one).</summary>
    public static void CheckModel(LoadedModel model, string? requested)
    {
        if (!string.IsNullOrEmpty(requested) && requested != model.Id)
        {
            throw new ApiException(404, $"The model '{requested}' does not exist; this server serves '{model.Id}'", "model", "model_not_found");
        }
    }

    /// <summary>Queues the generation; a full queue is 429 with Retry-After, a prompt that does not fit is 400.</summary>
    public GenerationStream Submit(LoadedModel model, int[] prompt, GenerationParameters p)
    {
        var defaults = new SamplingParams();
        var request = new GenerationRequest
        {
            PromptTokens = prompt,
            MaxTokens = p.MaxTokens ?? 0,
            StopTokens = p.IgnoreEos ? [] : [.. model.Tokenizer.StopTokens],
            TopLogprobs = p.TopLogprobs,
            Sampling = new SamplingParams
            {
                // top_p 0 keeps only the most likely token: greedy, whatever the temperature.
                Temperature = p.TopP == 0 ? 0 : p.Temperature ?? defaults.Temperature,
                TopK = p.TopK is { } k ? Math.Max(k, 0) : defaults.TopK,
                TopP = p.TopP is { } topP && topP > 0 ? topP : defaults.TopP,
                MinP = p.MinP ?? defaults.MinP,
                PresencePenalty = p.PresencePenalty,
                FrequencyPenalty = p.FrequencyPenalty,
                RepetitionPenalty = p.RepetitionPenalty ?? defaults.RepetitionPenalty,
                Seed = p.Seed,
            },
        };

        BatchScheduler scheduler = Runtime.Scheduler!;
        SubmitStatus status;
        GenerationStream? generation;
        try
        {
            status = scheduler.TrySubmit(request, out generation);
        }
        catch (ArgumentException e)
        {
            // The sampler refused a parameter combination the field checks let through.
            throw new InvalidRequestException("$: " + e.Message);
        }

        switch (status)
        {
            case SubmitStatus.Accepted:
                return generation!;
            case SubmitStatus.QueueFull:
                throw new ApiException(429, $"the server is busy: all {scheduler.SlotCount} slots and {Options.Scheduler.QueueSize} queue places are taken; retry shortly", code: "queue_full")
                {
                    RetryAfterSeconds = Options.Server.RetryAfterSeconds,
                };
            case SubmitStatus.ContextOverflow:
                throw new InvalidRequestException(
                    $"the prompt is {prompt.Length} tokens; this model's context holds {scheduler.ContextLength} (prompt plus at least one generated token)",
                    "messages", "context_length_exceeded");
            default:
                throw new ApiException(503, "the server is shutting down", code: "draining");
        }
    }
}
