using Halo.Core.Models;
using Halo.Engine.Backends;
using Halo.Engine.Scheduling;

namespace Halo.Engine.Tests.Scheduling;

/// <summary>
/// A deterministic stand-in for the model, for scheduler unit tests: each slot keeps its token history as a KV
/// cache would, rejects out-of-order positions and reused slots like a real cache would corrupt them, and puts
/// the highest logit on <see cref="Next"/> of the history, so the right continuation is known in advance and any
/// mix-up between slots or positions changes the output. It records the shape of every batch.
/// </summary>
internal sealed class RecurrenceBackend : IBackend
{
    private readonly List<int>[] _cache;
    private readonly object _log = new();

    public RecurrenceBackend(int slots, int contextLength, int vocab = 64)
    {
        Config = new ModelConfig
        {
            Architecture = "test", Name = "recurrence", HiddenSize = 8, FeedForwardSize = 8, LayerCount = 1,
            HeadCount = 1, KvHeadCount = 1, HeadDim = 8, VocabSize = vocab, ContextLength = contextLength,
            RopeTheta = 10000, RmsNormEps = 1e-5f, Activation = Activation.Silu, TiedEmbeddings = true,
        };
        MaxSlots = slots;
        ContextLength = contextLength;
        _cache = new List<int>[slots];
        for (int i = 0; i < slots; i++)
        {
            _cache[i] = new List<int>(contextLength);
        }
    }

    public BackendInfo Info { get; } = new("recurrence", "test");

    public ModelConfig Config { get; }

    public int MaxSlots { get; }

    public int ContextLength { get; }

    /// <summary>Blocks every forward pass until set (to hold generations in their slots).</summary>
    public ManualResetEventSlim Gate { get; } = new(true);

    /// <summary>Set when a forward pass has started (and is perhaps waiting at the gate).</summary>
    public ManualResetEventSlim Entered { get; } = new(false);

    /// <summary>Milliseconds each forward pass sleeps, so tests can observe a running generation.</summary>
    public int StepDelayMs { get; set; }

    /// <summary>When set, the next forward pass throws.</summary>
    public bool FailNext { get; set; }

    /// <summary>(chunk count, tokens per chunk) of every call, in order.</summary>
    public List<int[]> Batches { get; } = [];

    public bool RecordBatches { get; set; } = true;

    /// <summary>The token this model predicts after <paramref name="history"/>.</summary>
    public static int Next(ReadOnlySpan<int> history, int vocab)
    {
        long h = 7;
        foreach (int t in history)
        {
            h = (h * 31 + t) % 1_000_003;
        }

        return (int)(h % vocab);
    }

    /// <summary>What greedy decoding of this model yields for a prompt (the reference).</summary>
    public static List<int> Continue(int[] prompt, int count, int vocab)
    {
        var history = new List<int>(prompt);
        var output = new List<int>();
        for (int i = 0; i < count; i++)
        {
            int next = Next(history.ToArray(), vocab);
            output.Add(next);
            history.Add(next);
        }

        return output;
    }

    public void Forward(ReadOnlySpan<SequenceChunk> chunks, Span<float> logits)
    {
        Entered.Set();
        Gate.Wait();
        if (StepDelayMs > 0)
        {
            Thread.Sleep(StepDelayMs);
        }

        if (FailNext)
        {
            FailNext = false;
            throw new InvalidOperationException("injected engine failure");
        }

        if (RecordBatches)
        {
            var shape = new int[chunks.Length];
            for (int i = 0; i < chunks.Length; i++)
            {
                shape[i] = chunks[i].Tokens.Length;
            }

            lock (_log)
            {
                Batches.Add(shape);
            }
        }

        for (int i = 0; i < chunks.Length; i++)
        {
            SequenceChunk chunk = chunks[i];
            List<int> cache = _cache[chunk.Slot];
            if (chunk.StartPosition == 0)
            {
                cache.Clear();
            }

            if (chunk.StartPosition != cache.Count || chunk.StartPosition + chunk.Tokens.Length > ContextLength)
            {
                throw new InvalidOperationException($"slot {chunk.Slot}: chunk at {chunk.StartPosition}, cache holds {cache.Count}");
            }

            foreach (int t in chunk.Tokens.Span)
            {
                cache.Add(t);
            }

            Span<float> row = logits.Slice(i * Config.VocabSize, Config.VocabSize);
            for (int v = 0; v < row.Length; v++)
            {
                row[v] = -(v % 5);
            }

            row[Next(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(cache), Config.VocabSize)] = 10f;
        }
    }

    public void Dispose()
    {
        Gate.Dispose();
        Entered.Dispose();
    }
}

/// <summary>Argmax, the temperature-0 sampler.</summary>
internal sealed class ArgmaxSampler : ITokenSampler
{
    public int Sample(Span<float> logits, ReadOnlySpan<int> history)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        return best;
    }
}
