using System.Diagnostics;
using System.Runtime.CompilerServices;
using Halo.Engine.Backends;
using Halo.Engine.Sampling;

namespace Halo.Engine.Generation;

/// <summary>Why generation ended: a stop token or stop string (<c>stop</c>), or the token limit (<c>length</c>).</summary>
public enum FinishReason
{
    Stop,
    Length,
}

/// <summary>The prompt plus what it generates would not fit the context: reported before any work is done.</summary>
public sealed class ContextOverflowException(string message) : Exception(message);

/// <summary>What to generate and when to stop.</summary>
public sealed record GenerationOptions
{
    public int MaxTokens { get; init; } = 256;

    public SamplingParams Sampling { get; init; } = SamplingParams.Greedy;

    /// <summary>End-of-sequence / end-of-turn ids: generating one stops (it is not part of the output).</summary>
    public IReadOnlyCollection<int> StopTokens { get; init; } = [];

    /// <summary>Text that ends generation when it appears in the output (which is cut before it).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Turns generated ids into text; needed for <see cref="StopStrings"/> and <see cref="GenerationResult.Text"/>.</summary>
    public Func<IReadOnlyList<int>, string>? Decode { get; init; }

    /// <summary>Keep a copy of the logits of the first generated position (<c>halo run --dump-logits</c>).</summary>
    public bool KeepFirstLogits { get; init; }
}

/// <summary>The outcome of one generation.</summary>
public sealed class GenerationResult
{
    public required IReadOnlyList<int> Tokens { get; init; }

    public required FinishReason FinishReason { get; init; }

    public string? Text { get; init; }

    public float[]? FirstLogits { get; init; }

    public required TimeSpan PrefillTime { get; init; }

    public required TimeSpan DecodeTime { get; init; }

    public required int PromptTokenCount { get; init; }

    /// <summary>Forward steps of one token timed in <see cref="DecodeTime"/>.</summary>
    public required int DecodeSteps { get; init; }
}

/// <summary>
/// Generates one sequence on one slot of a backend (the <c>halo run</c> path; the server's scheduler batches
/// many). The prompt is prefilled in one forward call (the backend batches it), then one token per step.
/// </summary>
public sealed class Generator
{
    private readonly IBackend _backend;
    private readonly int _slot;
    private readonly float[] _logits;

    public Generator(IBackend backend, int slot = 0)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentOutOfRangeException.ThrowIfNegative(slot);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, backend.MaxSlots);
        _backend = backend;
        _slot = slot;
        _logits = new float[backend.Config.VocabSize];
    }

    /// <summary>
    /// Generates up to <see cref="GenerationOptions.MaxTokens"/> tokens after <paramref name="prompt"/>, calling
    /// <paramref name="onToken"/> for each. Throws <see cref="ContextOverflowException"/> when the prompt does not
    /// fit the context; when the context fills during generation it ends with <see cref="FinishReason.Length"/>.
    /// </summary>
    public GenerationResult Generate(IReadOnlyList<int> prompt, GenerationOptions options, Action<int>? onToken = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxTokens);
        if (prompt.Count == 0)
        {
            throw new ArgumentException("the prompt has no tokens");
        }

        if (prompt.Count >= _backend.ContextLength)
        {
            throw new ContextOverflowException($"the prompt has {prompt.Count} tokens; the context holds {_backend.ContextLength}, including at least one generated token");
        }

        if (options.StopStrings.Count > 0 && options.Decode is null)
        {
            throw new ArgumentException("stop strings need a Decode function");
        }

        var sampler = new Sampler(_backend.Config.VocabSize, options.Sampling);
        foreach (int t in prompt)
        {
            sampler.Accept(t);
        }

        var output = new List<int>();
        float[]? firstLogits = null;
        FinishReason finish = FinishReason.Length;
        int maxTokens = Math.Min(options.MaxTokens, _backend.ContextLength - prompt.Count);
        var step = new int[1];
        var chunk = new SequenceChunk[1];

        long start = Stopwatch.GetTimestamp();
        chunk[0] = new SequenceChunk(_slot, 0, prompt as int[] ?? [.. prompt]);
        if (maxTokens > 0)
        {
            _backend.Forward(chunk, _logits);
        }

        TimeSpan prefill = Stopwatch.GetElapsedTime(start);
        if (options.KeepFirstLogits && maxTokens > 0)
        {
            firstLogits = (float[])_logits.Clone();
        }

        start = Stopwatch.GetTimestamp();
        string? text = null;
        int position = prompt.Count;
        int decodeSteps = 0;
        while (output.Count < maxTokens)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int next = sampler.Sample(_logits);
            if (options.StopTokens.Contains(next))
            {
                finish = FinishReason.Stop;
                break;
            }

            output.Add(next);
            sampler.Accept(next);
            onToken?.Invoke(next);
            if (options.StopStrings.Count > 0 && StopStringIn(options, output, out text))
            {
                finish = FinishReason.Stop;
                break;
            }

            if (output.Count == maxTokens)
            {
                break;
            }

            step[0] = next;
            chunk[0] = new SequenceChunk(_slot, position++, step);
            _backend.Forward(chunk, _logits);
            decodeSteps++;
        }

        TimeSpan decode = Stopwatch.GetElapsedTime(start);
        text ??= options.Decode?.Invoke(output);
        return new GenerationResult
        {
            Tokens = output,
            FinishReason = finish,
            Text = text,
            FirstLogits = firstLogits,
            PrefillTime = prefill,
            DecodeTime = decode,
            PromptTokenCount = prompt.Count,
            DecodeSteps = decodeSteps,
        };
    }

    /// <summary>The tokens of <see cref="Generate"/> as an async stream; work runs off the caller's thread.</summary>
    public async IAsyncEnumerable<int> GenerateAsync(IReadOnlyList<int> prompt, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = System.Threading.Channels.Channel.CreateUnbounded<int>(new() { SingleReader = true, SingleWriter = true });
        Task work = Task.Run(
            () =>
            {
                try
                {
                    Generate(prompt, options, t => channel.Writer.TryWrite(t), cancellationToken);
                    channel.Writer.TryComplete();
                }
                catch (Exception e)
                {
                    channel.Writer.TryComplete(e);
                }
            },
            CancellationToken.None);
        await foreach (int token in channel.Reader.ReadAllAsync(CancellationToken.None))
        {
            yield return token;
        }

        await work;
    }

    private static bool StopStringIn(GenerationOptions options, List<int> output, out string? text)
    {
        string decoded = options.Decode!(output);
        foreach (string stop in options.StopStrings)
        {
            int at = stop.Length == 0 ? -1 : decoded.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0)
            {
                text = decoded[..at];
                return true;
            }
        }

        text = null;
        return false;
    }
}
