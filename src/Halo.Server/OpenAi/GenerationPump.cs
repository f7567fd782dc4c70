using System.Diagnostics;
using Halo.Engine.Scheduling;
using Halo.Server.Inference;
using Halo.Server.Metrics;

namespace Halo.Server.OpenAi;

/// <summary>One step of output for the client: text released by the stop-string matcher and the token that
/// produced it (null for text flushed at the end).</summary>
internal readonly record struct OutputPiece(string Text, GeneratedToken? Token);

/// <summary>
/// Moves a generation's tokens to a response: detokenizes incrementally, applies stop strings (ending the
/// generation when one appears), observes the latency metrics, and cancels the generation when the client goes
/// away so its slot is freed at the next step.
/// </summary>
internal static class GenerationPump
{
    /// <summary>Runs to the end; returns the finish reason and how many tokens the client was given.</summary>
    public static async Task<(FinishReason Finish, int CompletionTokens)> RunAsync(
        GenerationStream generation,
        IServedTokenizer tokenizer,
        IReadOnlyList<string> stops,
        HaloMetrics metrics,
        Func<OutputPiece, ValueTask> output,
        CancellationToken cancellationToken)
    {
        var text = new TokenTextStream(tokenizer);
        var matcher = new StopStringMatcher(stops);
        long previous = 0;
        int consumed = 0;
        try
        {
            while (await generation.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (generation.TryRead(out GeneratedToken token))
                {
                    if (matcher.Stopped)
                    {
                        continue;   // produced after the stop string, before the loop saw the cancel
                    }

                    ObserveLatency(metrics, generation, token.Timestamp, previous);
                    previous = token.Timestamp;
                    consumed++;
                    string released = matcher.Push(text.Push(token.TokenId));
                    await output(new OutputPiece(released, token)).ConfigureAwait(false);
                    if (matcher.Stopped)
                    {
                        generation.Cancel(FinishReason.Stop);
                    }
                }
            }
        }
        finally
        {
            // Client gone, write failed, or cancelled: free the slot.
            if (generation.FinishReason is null)
            {
                generation.Cancel();
            }
        }

        if (matcher.Stopped)
        {
            return (FinishReason.Stop, consumed);
        }

        string rest = matcher.Push(text.Flush()) + matcher.Flush();
        if (rest.Length > 0)
        {
            await output(new OutputPiece(rest, null)).ConfigureAwait(false);
        }

        return (generation.FinishReason!.Value, consumed);
    }

    private static void ObserveLatency(HaloMetrics metrics, GenerationStream generation, long timestamp, long previous)
    {
        if (previous == 0)
        {
            metrics.QueueTime.Observe(Seconds(generation.EnqueuedTimestamp, generation.AdmittedTimestamp));
            metrics.TimeToFirstToken.Observe(Seconds(generation.EnqueuedTimestamp, timestamp));
        }
        else
        {
            metrics.InterTokenLatency.Observe(Seconds(previous, timestamp));
        }
    }

    private static double Seconds(long from, long to) => Math.Max(0, to - from) / (double)Stopwatch.Frequency;

    /// <summary>OpenAI's finish_reason; a generation cut by shutdown reports "length" (it was truncated).</summary>
    public static string FinishText(FinishReason reason) => reason == FinishReason.Stop ? "stop" : "length";
}
