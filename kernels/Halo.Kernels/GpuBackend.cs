using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Sampling;
using Halo.Kernels.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Microsoft.Extensions.Logging;

namespace Halo.Kernels;

/// <summary>
/// The BitNet b1.58 forward pass (DESIGN.md section 2) on an ILGPU accelerator: CUDA, OpenCL, or the CPU
/// accelerator in tests. Weights are uploaded once (<see cref="DeviceModel"/>), the KV cache of
/// <see cref="MaxSlots"/> sequences lives on the device, and a step is one queue of kernel launches: the
/// host uploads the step's token ids, slots and positions, and waits once, when it copies back the logits
/// (<see cref="Forward"/>) or only the sampled ids (<see cref="ForwardSample"/>).
/// </summary>
public sealed class GpuBackend : IBackend
{
    /// <summary>Batches of at most this many tokens use the split-KV decode attention; larger ones the prefill kernel.</summary>
    private const int DecodeTokenLimit = 8;
    private const int MaxSplits = 32;

    /// <summary>
    /// A decode split's warp walks its positions a batch of 8 at a time, each batch a few rounds of memory
    /// latency, so shorter splits (more warps) finish sooner.
    /// </summary>
    private const int MinSplitLength = 2 * Kernels.AttentionDecode.Batch;

    private readonly Accelerator _accelerator;
    private readonly IDisposable? _owner;
    private readonly KernelSet _k;
    private readonly DeviceModel _w;
    private readonly ModelConfig _c;
    private readonly ActivationScaling _scaling;
    private readonly bool _llamaCppNumerics;
    private readonly int _maxTokens, _qDim, _kvDim, _maxWidth;
    private readonly List<IDisposable> _buffers = [];

    // KV cache: per layer [slots, kv_heads, context, head_dim]
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] _keyCache;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>[] _valueCache;

    // Activations of one batch, row t is token t.
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _tokens, _slots, _positions; // (T)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _x;       // (T, d) residual stream
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _h;       // (T, d) normed block input
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _q;       // (T, heads * head_dim)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _kNew;    // (T, kv_heads * head_dim)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _vNew;    // (T, kv_heads * head_dim)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _att;     // (T, heads * head_dim)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _gate;    // (T, ffn)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _up;      // (T, ffn)
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _qx;        // (T, max width / 4) int8 activations
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _qxScale; // (T, max width / 256)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _partials;// (decode tokens, heads, splits, head_dim + 2)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _cos, _sin; // (context, head_dim / 2)

    // Per finished chunk of a batch (at most MaxSlots rows).
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _lastRows;  // (R) batch row of each chunk's last token
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _last;    // (R, d)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _logits;  // (R, vocab)
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _candidateValues; // (R, slices, TopK.MaxK)
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _candidateIds;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _topValues;       // (R, TopK.MaxK)
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _topIds;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _uniforms;        // (R)
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _sampled;           // (R)

    // Host staging of one batch, reused every step.
    private readonly int[] _hostTokens, _hostSlots, _hostPositions, _hostLastRows;
    private bool _disposed;

    internal GpuBackend(Accelerator accelerator, IModelSource source, BackendOptions options, IDisposable? owner, string apiName)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxSlots < 1 || options.ContextLength < 0 || options.MaxBatchTokens < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "MaxSlots and MaxBatchTokens must be at least 1, ContextLength at least 0");
        }

        ModelConfig model = source.Config;
        Validate(source.Path, model);
        _accelerator = accelerator;
        _owner = owner;
        _llamaCppNumerics = options.Numerics == NumericsMode.LlamaCpp;
        _scaling = options.ActivationScaling ?? (_llamaCppNumerics ? ActivationScaling.PerBlock : ActivationScaling.PerToken);
        _c = model with { Activation = options.ActivationOverride ?? model.Activation };
        Config = _c;
        MaxSlots = options.MaxSlots;
        ContextLength = options.ContextLength > 0 ? options.ContextLength : model.ContextLength;
        _maxTokens = Math.Min(options.MaxBatchTokens, ContextLength * MaxSlots);
        _qDim = _c.HeadCount * _c.HeadDim;
        _kvDim = _c.KvHeadCount * _c.HeadDim;
        _maxWidth = Math.Max(Math.Max(_c.HiddenSize, _qDim), _c.FeedForwardSize);
        CheckMemory(accelerator, source, apiName);

        try
        {
            _k = new KernelSet(accelerator);
            _w = new DeviceModel(accelerator, source);
            long cachePerLayer = (long)MaxSlots * _kvDim * ContextLength;
            _keyCache = new MemoryBuffer1D<float, Stride1D.Dense>[_c.LayerCount];
            _valueCache = new MemoryBuffer1D<float, Stride1D.Dense>[_c.LayerCount];
            for (int l = 0; l < _c.LayerCount; l++)
            {
                _keyCache[l] = Zeroed<float>(cachePerLayer);
                _valueCache[l] = Zeroed<float>(cachePerLayer);
            }

            int t = _maxTokens, d = _c.HiddenSize, rows = MaxSlots;
            _tokens = Zeroed<int>(t);
            _slots = Zeroed<int>(t);
            _positions = Zeroed<int>(t);
            _x = Zeroed<float>((long)t * d);
            _h = Zeroed<float>((long)t * d);
            _q = Zeroed<float>((long)t * _qDim);
            _kNew = Zeroed<float>((long)t * _kvDim);
            _vNew = Zeroed<float>((long)t * _kvDim);
            _att = Zeroed<float>((long)t * _qDim);
            _gate = Zeroed<float>((long)t * _c.FeedForwardSize);
            _up = Zeroed<float>((long)t * _c.FeedForwardSize);
            _qx = Zeroed<int>((long)t * _maxWidth / 4);
            _qxScale = Zeroed<float>((long)t * _maxWidth / 256);
            _partials = Zeroed<float>((long)Math.Min(t, DecodeTokenLimit) * _c.HeadCount * MaxSplits * (_c.HeadDim + 2));
            float[] cos = new float[(long)ContextLength * _c.HeadDim / 2];
            float[] sin = new float[cos.Length];
            RopeTable(cos, sin);
            _cos = Track(accelerator.Allocate1D(cos));
            _sin = Track(accelerator.Allocate1D(sin));
            _lastRows = Zeroed<int>(rows);
            _last = Zeroed<float>((long)rows * d);
            _logits = Zeroed<float>((long)rows * _c.VocabSize);
            int slices = TopK.Slices(_c.VocabSize);
            _candidateValues = Zeroed<float>((long)rows * slices * TopK.MaxK);
            _candidateIds = Zeroed<int>((long)rows * slices * TopK.MaxK);
            _topValues = Zeroed<float>((long)rows * TopK.MaxK);
            _topIds = Zeroed<int>((long)rows * TopK.MaxK);
            _uniforms = Zeroed<float>(rows);
            _sampled = Zeroed<int>(rows);
            accelerator.Synchronize();
        }
        catch (Exception e) when (e is not InvalidModelException)
        {
            Dispose();
            throw new GpuUnavailableException($"{apiName} device {accelerator.Name}: could not load the model ({e.Message})", e);
        }
        catch
        {
            Dispose();
            throw;
        }

        _hostTokens = new int[_maxTokens];
        _hostSlots = new int[_maxTokens];
        _hostPositions = new int[_maxTokens];
        _hostLastRows = new int[MaxSlots];
        Info = new BackendInfo("gpu", $"{apiName}: {accelerator.Name} ({accelerator.MemorySize / (1024.0 * 1024 * 1024):F1} GiB, warp {accelerator.WarpSize})");
        CompileKernels();
    }

    public BackendInfo Info { get; }

    public ModelConfig Config { get; }

    public int MaxSlots { get; }

    public int ContextLength { get; }

    /// <summary>Bytes of weights on the device (ternary codes and scales, F16 tables, norms).</summary>
    public long WeightBytes => _w.Bytes;

    /// <summary>
    /// Picks a GPU (CUDA first, then an OpenCL device ILGPU can drive; see <see cref="GpuDevices"/>) and loads the
    /// model on it. Throws <see cref="GpuUnavailableException"/> with the reason when none can run it.
    /// </summary>
    public static GpuBackend Create(IModelSource source, BackendOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        GpuDevices.Selection selection = GpuDevices.Open(logger);
        try
        {
            return new GpuBackend(selection.Accelerator, source, options, selection, selection.Api);
        }
        catch
        {
            selection.Dispose();
            throw;
        }
    }

    public void Forward(ReadOnlySpan<SequenceChunk> chunks, Span<float> logits)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (logits.Length < (long)chunks.Length * _c.VocabSize)
        {
            throw new ArgumentException($"logits holds {logits.Length} floats, {chunks.Length} chunks need {(long)chunks.Length * _c.VocabSize}");
        }

        Run(chunks, logits, default, null, default);
    }

    /// <summary>
    /// Runs the step like <see cref="Forward"/>, then picks each chunk's next token on the device and copies back
    /// only the ids: argmax when the temperature is 0, else top-k (at most <see cref="TopK.MaxK"/> candidates; top-k 0
    /// means that many), top-p, min-p and temperature drawn with <paramref name="uniforms"/>[i] in [0, 1).
    /// Repetition penalties need the token history: use <see cref="Forward"/> and the engine's sampler for them.
    /// </summary>
    public void ForwardSample(ReadOnlySpan<SequenceChunk> chunks, SamplingParams sampling, ReadOnlySpan<float> uniforms, Span<int> tokens)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(sampling);
        if (sampling.RepetitionPenalty != 1f || sampling.PresencePenalty != 0f || sampling.FrequencyPenalty != 0f)
        {
            throw new ArgumentException("penalties need the token history: sample on the host from Forward's logits");
        }

        if (tokens.Length < chunks.Length || (sampling.Temperature > 0f && uniforms.Length < chunks.Length))
        {
            throw new ArgumentException($"{chunks.Length} chunks need {chunks.Length} token slots and uniforms");
        }

        Run(chunks, default, tokens, sampling, uniforms);
    }

    private void Run(ReadOnlySpan<SequenceChunk> chunks, Span<float> logits, Span<int> sampledTokens, SamplingParams? sampling, ReadOnlySpan<float> uniforms)
    {
        ValidateChunks(chunks);
        int n = 0, finished = 0, firstChunk = 0;
        for (int c = 0; c < chunks.Length; c++)
        {
            SequenceChunk chunk = chunks[c];
            ReadOnlySpan<int> tokens = chunk.Tokens.Span;
            for (int i = 0; i < tokens.Length; i++)
            {
                _hostTokens[n] = tokens[i];
                _hostSlots[n] = chunk.Slot;
                _hostPositions[n] = chunk.StartPosition + i;
                if (i == tokens.Length - 1)
                {
                    _hostLastRows[finished++] = n;
                }

                n++;
                if (n == _maxTokens || (c == chunks.Length - 1 && i == tokens.Length - 1))
                {
                    RunBatch(n);
                    if (finished > 0)
                    {
                        Finish(finished, firstChunk, logits, sampledTokens, sampling, uniforms);
                    }

                    firstChunk += finished;
                    finished = 0;
                    n = 0;
                }
            }
        }
    }

    /// <summary>
    /// Runs a prefill chunk and a decode step in slot 0 once, and with more than one slot a step that finishes two
    /// sequences, so that ILGPU compiles every kernel of these paths (and each specialised head dimension, width
    /// and tile: one token or row, or up to 8) at load rather than inside the first request, which would otherwise
    /// wait for the compiler (ILGPU compiles a kernel at its first launch). Each slot's next sequence overwrites
    /// these cache rows before it reads them.
    /// </summary>
    private void CompileKernels()
    {
        int prompt = Math.Min(DecodeTokenLimit + 1, Math.Min(_maxTokens, ContextLength - 1));
        var tokens = new int[prompt];
        var logits = new float[2 * _c.VocabSize];
        Forward([new SequenceChunk(0, 0, tokens)], logits.AsSpan(0, _c.VocabSize));
        Forward([new SequenceChunk(0, prompt, tokens.AsMemory(0, 1))], logits.AsSpan(0, _c.VocabSize));
        if (MaxSlots > 1)
        {
            // the LM head over two rows: its tiled kernel, which the first batched decode step would otherwise compile
            Forward([new SequenceChunk(0, prompt, tokens.AsMemory(0, 1)), new SequenceChunk(1, 0, tokens.AsMemory(0, 1))], logits);
        }
    }

    /// <summary>Every layer over the first <paramref name="n"/> staged tokens: launches only, no waiting.</summary>
    private void RunBatch(int n)
    {
        int d = _c.HiddenSize, ffn = _c.FeedForwardSize, heads = _c.HeadCount, kvHeads = _c.KvHeadCount, hd = _c.HeadDim;
        First(_tokens, n).CopyFromCPU(_hostTokens.AsSpan(0, n));
        First(_slots, n).CopyFromCPU(_hostSlots.AsSpan(0, n));
        First(_positions, n).CopyFromCPU(_hostPositions.AsSpan(0, n));
        _k.Embedding(_w.Embedding.View, _tokens.View, _x.View, n, d);

        int maxLength = 0;
        for (int t = 0; t < n; t++)
        {
            maxLength = Math.Max(maxLength, _hostPositions[t] + 1);
        }

        for (int layer = 0; layer < _c.LayerCount; layer++)
        {
            DeviceLayer L = _w.Layers[layer];

            // Attention block: h = rmsnorm(x) * attn_norm; q,k,v = (W h) * s
            NormQuantize(_x.View, L.AttnNorm, _h.View, n, d);
            MatMul(L.Wqkv, n, accumulate: false, _q.View, _kNew.View, _vNew.View);

            // q,k = RoPE NEOX; k,v appended to each token's slot at its position
            _k.RopeAndCache(_q.View, _kNew.View, _vNew.View, _slots.View, _positions.View, _cos.View, _sin.View, _keyCache[layer].View, _valueCache[layer].View, n, heads, kvHeads, hd, ContextLength,
                _llamaCppNumerics ? KvRounding.Half : KvRounding.BFloat16);

            // a = softmax(q k^T / sqrt(head_dim) + causal) v, GQA
            Attention(layer, n, maxLength);

            // x += (Wo (rmsnorm(a) * attn_sub_norm)) * so
            NormQuantize(_att.View, L.AttnSubNorm, _att.View, n, _qDim);
            MatMul(L.Wo, n, accumulate: true, _x.View);

            // Feed-forward block: h = rmsnorm(x) * ffn_norm; f = act((Wg h) * sg) * ((Wu h) * su)
            NormQuantize(_x.View, L.FfnNorm, _h.View, n, d);
            MatMul(L.WgateUp, n, accumulate: false, _gate.View, _up.View);

            // x += (Wd (rmsnorm(f) * ffn_sub_norm)) * sd, f computed as the norm reads the gate
            NormQuantize(_gate.View, L.FfnSubNorm, _gate.View, n, ffn, _up.View, _c.Activation == Activation.Relu2 ? Glu.Relu2 : Glu.Silu);
            MatMul(L.Wdown, n, accumulate: true, _x.View);
        }
    }

    /// <summary>
    /// logits = E (rmsnorm(x) * output_norm) for the last token of each finished chunk, then the single wait of
    /// the step: copying back the logits, or only the sampled ids.
    /// </summary>
    private void Finish(int rows, int firstChunk, Span<float> logits, Span<int> sampledTokens, SamplingParams? sampling, ReadOnlySpan<float> uniforms)
    {
        int d = _c.HiddenSize, vocab = _c.VocabSize;
        First(_lastRows, rows).CopyFromCPU(_hostLastRows.AsSpan(0, rows));
        _k.GatherRows(_x.View, _lastRows.View, _last.View, rows, d);
        _k.RmsNorm(_last.View, _w.OutputNorm.View, _last.View, rows, d, _c.RmsNormEps, roundToHalf: _llamaCppNumerics);
        _k.LmHead(_w.LmHead.View, _last.View, _logits.View, rows, vocab, d);
        if (sampling is null)
        {
            First(_logits, (long)rows * vocab).CopyToCPU(logits.Slice(firstChunk * vocab, rows * vocab));
            return;
        }

        if (sampling.Temperature <= 0f)
        {
            _k.ArgMax(_logits.View, _sampled.View, rows, vocab);
        }
        else
        {
            int k = Math.Min(sampling.TopK is > 0 and <= TopK.MaxK ? sampling.TopK : TopK.MaxK, vocab);
            First(_uniforms, rows).CopyFromCPU(uniforms.Slice(firstChunk, rows));
            _k.TopK(_logits.View, _candidateValues.View, _candidateIds.View, _topValues.View, _topIds.View, rows, vocab, k);
            _k.Sample(_topValues.View, _topIds.View, _uniforms.View, _sampled.View, rows, k, sampling.Temperature, sampling.TopP, sampling.MinP);
        }

        First(_sampled, rows).CopyToCPU(sampledTokens.Slice(firstChunk, rows));
    }

    private void Attention(int layer, int n, int maxLength)
    {
        int heads = _c.HeadCount, kvHeads = _c.KvHeadCount, hd = _c.HeadDim;
        if (n > DecodeTokenLimit)
        {
            _k.AttentionPrefill(_q.View, _keyCache[layer].View, _valueCache[layer].View, _slots.View, _positions.View, _att.View, n, heads, kvHeads, hd, ContextLength, _llamaCppNumerics);
            return;
        }

        // Split the longest sequence of the batch into at most MaxSplits ranges of whole batches.
        int batch = Kernels.AttentionDecode.Batch;
        int splitLength = Math.Max(MinSplitLength, (maxLength + MaxSplits - 1) / MaxSplits);
        splitLength = (splitLength + batch - 1) / batch * batch;
        int splits = (maxLength + splitLength - 1) / splitLength;
        _k.AttentionDecode(_q.View, _keyCache[layer].View, _valueCache[layer].View, _slots.View, _positions.View, _partials.View, _att.View, n, heads, kvHeads, hd, ContextLength, splits, splitLength, _llamaCppNumerics);
    }

    /// <summary>x [n, width] normalised into <paramref name="normed"/> and quantized into the matmul input.</summary>
    private void NormQuantize(ArrayView<float> x, MemoryBuffer1D<float, Stride1D.Dense> weight, ArrayView<float> normed, int n, int width, ArrayView<float> up = default, int activation = Glu.None)
    {
        bool perToken = _scaling == ActivationScaling.PerToken;
        _k.NormQuantize(x, weight.View, normed, _qx.View, _qxScale.View, n, width, _c.RmsNormEps, perToken ? width : 256, perToken ? 1e-5f : 0f, up, activation);
    }

    /// <summary>Each stacked matrix of <paramref name="w"/> times the quantized input into its output (added with <paramref name="accumulate"/>).</summary>
    private void MatMul(DeviceTernaryMatrix w, int n, bool accumulate, params ReadOnlySpan<ArrayView<float>> outputs) =>
        _k.TernaryMatMul(w, _qx.View, _qxScale.View, outputs, n, _scaling == ActivationScaling.PerToken ? w.Columns : 256, accumulate);

    /// <summary>The rotation table, built by the engine's own routine so both backends rotate by identical angles.</summary>
    private unsafe void RopeTable(float[] cos, float[] sin)
    {
        int half = _c.HeadDim / 2;
        float* row = stackalloc float[_c.HeadDim];
        for (int pos = 0; pos < ContextLength; pos++)
        {
            VectorOps.RopeTable(pos, _c.RopeTheta, _c.HeadDim, row, row + half);
            new ReadOnlySpan<float>(row, half).CopyTo(cos.AsSpan(pos * half, half));
            new ReadOnlySpan<float>(row + half, half).CopyTo(sin.AsSpan(pos * half, half));
        }
    }

    private void ValidateChunks(ReadOnlySpan<SequenceChunk> chunks)
    {
        if (chunks.Length > MaxSlots)
        {
            throw new ArgumentException($"{chunks.Length} chunks in one step, the backend has {MaxSlots} slots");
        }

        SequenceChunks.Validate(chunks, MaxSlots, ContextLength, _c.VocabSize, _c.VocabSize);
    }

    private static void Validate(string file, ModelConfig c)
    {
        if (c.HiddenSize <= 0 || c.HiddenSize % 256 != 0 || c.FeedForwardSize <= 0 || c.FeedForwardSize % 256 != 0)
        {
            throw new InvalidModelException(file, $"hidden size {c.HiddenSize} and feed-forward size {c.FeedForwardSize} must be positive multiples of 256");
        }

        if (c.HeadCount <= 0 || c.KvHeadCount <= 0 || c.HeadCount % c.KvHeadCount != 0)
        {
            throw new InvalidModelException(file, $"head count {c.HeadCount} must be a positive multiple of the KV head count {c.KvHeadCount}");
        }

        if (c.HeadDim <= 0 || c.HeadDim % 2 != 0 || c.HeadDim > AttentionTile.MaxHeadDim || (c.HeadCount * c.HeadDim) % 256 != 0)
        {
            throw new InvalidModelException(file, $"head dim {c.HeadDim} must be even, at most {AttentionTile.MaxHeadDim}, and heads x head dim a multiple of 256");
        }

        if (c.LayerCount <= 0 || c.VocabSize <= 0 || c.ContextLength <= 0)
        {
            throw new InvalidModelException(file, "layer count, vocabulary size and context length must be positive");
        }
    }

    /// <summary>Refuses before allocating when the weights and the KV cache cannot fit the device's memory.</summary>
    private void CheckMemory(Accelerator accelerator, IModelSource source, string apiName)
    {
        if (accelerator.AcceleratorType == AcceleratorType.CPU)
        {
            return;
        }

        long weights = 0;
        foreach (TensorView t in source.Tensors)
        {
            // ternary tensors grow to 2 bits + a float scale per 256 weights; everything else is uploaded as stored
            weights += t.Type is GgmlType.TQ1_0 or GgmlType.TQ2_0 ? t.ElementCount / 4 + t.ElementCount / 256 * 4 : t.ByteLength;
        }

        long cache = 2L * _c.LayerCount * MaxSlots * _kvDim * ContextLength * sizeof(float);
        long activations = (long)_maxTokens * (3L * _c.HiddenSize + 2L * _qDim + 2L * _kvDim + 2L * _c.FeedForwardSize + _maxWidth / 2) * sizeof(float);
        long needed = weights + cache + activations + (long)MaxSlots * _c.VocabSize * sizeof(float) * 3;
        if (needed > accelerator.MemorySize * 0.95)
        {
            throw new GpuUnavailableException(
                $"{apiName} device {accelerator.Name} has {accelerator.MemorySize / 1048576.0:F0} MiB, the model needs {needed / 1048576.0:F0} MiB " +
                $"(weights {weights / 1048576.0:F0}, KV cache {cache / 1048576.0:F0} for {MaxSlots} slots x {ContextLength} positions): lower the context length or slots");
        }
    }

    /// <summary>The first <paramref name="length"/> elements of a buffer, as the contiguous view copies take.</summary>
    private static ArrayView<T> First<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer, long length)
        where T : unmanaged => ((ArrayView<T>)buffer.View).SubView(0, length);

    private MemoryBuffer1D<T, Stride1D.Dense> Zeroed<T>(long length)
        where T : unmanaged
    {
        MemoryBuffer1D<T, Stride1D.Dense> buffer = Track(_accelerator.Allocate1D<T>(Math.Max(length, 1)));
        buffer.MemSetToZero();
        return buffer;
    }

    private MemoryBuffer1D<T, Stride1D.Dense> Track<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer)
        where T : unmanaged
    {
        _buffers.Add(buffer);
        return buffer;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (IDisposable buffer in _buffers)
        {
            buffer.Dispose();
        }

        _buffers.Clear();
        _w?.Dispose();
        _owner?.Dispose();
    }
}
