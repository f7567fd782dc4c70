using System.Diagnostics;
using System.Runtime.Intrinsics.X86;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Profiling;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu;

/// <summary>
/// The CPU SIMD backend: ternary weights repacked for AVX-512BW / AVX2 kernels (portable Vector128 fallback), int8
/// activations, persistent worker threads, a float KV cache per slot. Build it with <see cref="Create"/>.
/// </summary>
public sealed unsafe class CpuBackend : IBackend
{
    private readonly ModelWeights _weights;
    private readonly bool _ownsWeights;
    private readonly KvCache _cache;
    private readonly WorkerPool _pool;
    private readonly Transformer _transformer;
    private readonly Int8Matrix? _int8Head;
    private readonly Task? _storingHead; // writing the quantized head to the repack cache
    private readonly Int4Matrix? _int4Head;
    private readonly Int6Matrix? _int6Head;
    private readonly int[] _lastTokenOfChunk; // (MaxBatchTokens): chunk whose last token sits at batch index, or -1
    private bool _disposed;

    private CpuBackend(ModelWeights weights, bool ownsWeights, BackendOptions options, Action<nint, long>? releaseHeadSource = null, IModelSource? source = null)
    {
        ModelConfig model = weights.Config;
        if (options.MaxSlots < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "MaxSlots must be at least 1");
        }

        if (options.ContextLength < 0 || options.MaxBatchTokens < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "ContextLength must be >= 0 and MaxBatchTokens >= 1");
        }

        _weights = weights;
        _ownsWeights = ownsWeights;
        Numerics = options.Numerics;
        Scaling = options.ActivationScaling
            ?? (options.Numerics == NumericsMode.LlamaCpp ? ActivationScaling.PerBlock : ActivationScaling.PerToken);
        Config = model with { Activation = options.ActivationOverride ?? model.Activation };
        MaxSlots = options.MaxSlots;
        ContextLength = options.ContextLength > 0 ? options.ContextLength : model.ContextLength;
        int threads = Math.Clamp(options.Threads, 1, 256);
        LoadTimings timings = options.LoadTimings ?? new LoadTimings();
        long lap = Stopwatch.GetTimestamp();
        _cache = new KvCache(MaxSlots, model.LayerCount, ContextLength, model.KvHeadCount, model.HeadDim,
            Numerics == NumericsMode.LlamaCpp ? KvStorage.F32 : KvStorage.Bf16);
        lap = timings.Lap("kv_cache", lap);
        _pool = new WorkerPool(threads);
        lap = timings.Lap("workers", lap);
        LmHead = options.LmHead ?? (options.Numerics == NumericsMode.LlamaCpp ? LmHeadPrecision.Source : LmHeadPrecision.Int6);
        int vocab = model.VocabSize, cols = weights.LmHead.Cols;
        string name = weights.LmHead.Name;
        if (LmHead == LmHeadPrecision.Int8)
        {
            _int8Head = CachedHead($"int8 head {name} {vocab}x{cols}", Int8Matrix.ArenaBytes(vocab, cols), options.RepackCache, source,
                cached => Int8Matrix.Over(vocab, cols, cached), () => Int8Matrix.Quantize(weights.LmHead, vocab, releaseHeadSource),
                head => head.Memory, out _storingHead);
            lap = timings.Lap("lm_head_int8", lap);
        }
        else if (LmHead == LmHeadPrecision.Int4)
        {
            _int4Head = CachedHead($"int4 head g{Int4GroupSize} {name} {vocab}x{cols}", Int4Matrix.ArenaBytes(vocab, cols, Int4GroupSize),
                options.RepackCache, source, cached => Int4Matrix.Over(vocab, cols, Int4GroupSize, cached),
                () => Int4Matrix.Quantize(weights.LmHead, vocab, Int4GroupSize, releaseHeadSource), head => head.Memory, out _storingHead);
            lap = timings.Lap("lm_head_int4", lap);
        }
        else if (LmHead == LmHeadPrecision.Int6)
        {
            _int6Head = CachedHead($"int6 head g{Int6GroupSize} {name} {vocab}x{cols}", Int6Matrix.ArenaBytes(vocab, cols, Int6GroupSize),
                options.RepackCache, source, cached => Int6Matrix.Over(vocab, cols, Int6GroupSize, cached),
                () => Int6Matrix.Quantize(weights.LmHead, vocab, Int6GroupSize, releaseHeadSource), head => head.Memory, out _storingHead);
            lap = timings.Lap("lm_head_int6", lap);
        }

        _transformer = new Transformer(weights, _int8Head, _int4Head, _int6Head, _cache, _pool, Math.Min(options.MaxBatchTokens, Math.Max(ContextLength, 1)), Config.Activation, Numerics, Scaling);
        _lastTokenOfChunk = new int[_transformer.MaxTokens];
        Info = new BackendInfo("cpu", $"{CpuName()} ({threads} threads, {SimdName()})");
        timings.Lap("buffers", lap);
    }

    public BackendInfo Info { get; }

    public ModelConfig Config { get; }

    public int MaxSlots { get; }

    public int ContextLength { get; }

    public NumericsMode Numerics { get; }

    public ActivationScaling Scaling { get; }

    public LmHeadPrecision LmHead { get; }

    /// <summary>Columns per scale of the 4-bit LM head (see the accuracy tests for why 32).</summary>
    public const int Int4GroupSize = 32;

    /// <summary>Columns per scale of the 6-bit LM head (see the accuracy tests for why 32).</summary>
    public const int Int6GroupSize = 32;

    /// <summary>Per-op timings (halo bench --breakdown); null (the default) measures nothing.</summary>
    public OpProfile? Profile
    {
        get => _transformer.Profile;
        set => _transformer.Profile = value;
    }

    public bool WarmingUp
    {
        get => _transformer.WarmingUp;
        set => _transformer.WarmingUp = value;
    }

    /// <summary>Loads the weights of <paramref name="source"/> (which must outlive the backend) and builds the backend.</summary>
    public static CpuBackend Create(IModelSource source, BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        long start = Stopwatch.GetTimestamp();
        ModelWeights weights = ModelWeights.Load(source, options.RepackCache);
        options.LoadTimings?.Lap("weights", start);
        try
        {
            return new CpuBackend(weights, ownsWeights: true, options, (address, length) => SourcePages.Release(source, address, length), source);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A quantized LM head: mapped from the repack cache when it holds a valid copy (under <paramref name="description"/>)
    /// for this model file, else quantized (and, with a cache, written to it on a background thread that disposal
    /// waits for).
    /// </summary>
    private static THead CachedHead<THead>(string description, long bytes, RepackCache? cache, IModelSource? source,
        Func<WeightArena, THead> over, Func<THead> quantize, Func<THead, WeightArena> memory, out Task? storing)
    {
        storing = null;
        RepackKey? key = cache is not null && source is not null ? RepackCache.Key(source, description) : null;
        if (key is { } k && cache!.TryOpen(k, bytes) is { } cached)
        {
            return over(cached);
        }

        THead head = quantize();
        if (key is { } storeKey)
        {
            storing = ModelWeights.StoreInBackground(cache!, storeKey, memory(head));
        }

        return head;
    }

    /// <summary>Builds a backend over already loaded weights (shared, not disposed with the backend).</summary>
    public static CpuBackend Create(ModelWeights weights, BackendOptions options) => new(weights, ownsWeights: false, options);

    public void Forward(ReadOnlySpan<SequenceChunk> chunks, Span<float> logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int vocab = Config.VocabSize;
        Validate(chunks, logits.Length, vocab);
        fixed (float* logitsPtr = logits)
        {
            int n = 0;
            for (int c = 0; c < chunks.Length; c++)
            {
                SequenceChunk chunk = chunks[c];
                ReadOnlySpan<int> tokens = chunk.Tokens.Span;
                for (int i = 0; i < tokens.Length; i++)
                {
                    _transformer.SetToken(n, tokens[i], chunk.Slot, chunk.StartPosition + i);
                    _lastTokenOfChunk[n] = i == tokens.Length - 1 ? c : -1;
                    n++;
                    if (n == _transformer.MaxTokens)
                    {
                        RunBatch(n, logitsPtr, vocab);
                        n = 0;
                    }
                }
            }

            if (n > 0)
            {
                RunBatch(n, logitsPtr, vocab);
            }
        }
    }

    private void RunBatch(int n, float* logits, int vocab)
    {
        _transformer.Forward(n);
        int* group = stackalloc int[Int8MatVec.BatchTokens];
        float** targets = stackalloc float*[Int8MatVec.BatchTokens];
        int grouped = 0;
        for (int t = 0; t < n; t++)
        {
            if (_lastTokenOfChunk[t] < 0)
            {
                continue;
            }

            float* target = logits + (long)_lastTokenOfChunk[t] * vocab;
            if (!_transformer.BatchesLogits)
            {
                _transformer.Logits(t, target);
                continue;
            }

            // Sequences decoding together share each pass over the LM head, in groups of up to 8.
            group[grouped] = t;
            targets[grouped++] = target;
            if (grouped == Int8MatVec.BatchTokens)
            {
                _transformer.LogitsBatch(group, targets, grouped);
                grouped = 0;
            }
        }

        if (grouped > 1)
        {
            _transformer.LogitsBatch(group, targets, grouped);
        }
        else if (grouped == 1)
        {
            _transformer.Logits(group[0], targets[0]);
        }
    }

    private void Validate(ReadOnlySpan<SequenceChunk> chunks, int logitsLength, int vocab)
    {
        if (logitsLength < (long)chunks.Length * vocab)
        {
            throw new ArgumentException($"logits holds {logitsLength} floats, {chunks.Length} chunks need {(long)chunks.Length * vocab}");
        }

        SequenceChunks.Validate(chunks, MaxSlots, ContextLength, vocab, Math.Min(vocab, _weights.Embedding.Rows));
    }

    private static string SimdName() =>
        TernaryMatMul.UseAvx512 && TernaryMatMul.UseVnni512 ? "AVX-512BW, VNNI GEMM"
        : TernaryMatMul.UseAvx512 ? "AVX-512BW"
        : TernaryMatMul.UseAvx2 ? "AVX2" : "Vector128";

    private static string CpuName()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal))
                {
                    return line[(line.IndexOf(':') + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return X86Base.IsSupported ? "x86-64 CPU" : "CPU";
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _pool.Dispose();
        _transformer.Dispose();
        _cache.Dispose();
        _storingHead?.Wait();
        _int8Head?.Dispose();
        _int4Head?.Dispose();
        _int6Head?.Dispose();
        if (_ownsWeights)
        {
            _weights.Dispose();
        }
    }
}
