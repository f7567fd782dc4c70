using System.Diagnostics.CodeAnalysis;
using Halo.Kernels.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels;

/// <summary>How the lanes of a warp exchange values in the kernels (see <see cref="ILaneExchange"/>).</summary>
public enum LaneExchangeKind
{
    /// <summary>Hardware warp shuffles: CUDA, and ILGPU's CPU accelerator.</summary>
    Shuffle,

    /// <summary>Shared memory and group barriers over logical 32-lane warps: OpenCL (AMD ROCm, Strix Halo).</summary>
    SharedMemory,
}

/// <summary>
/// Every kernel compiled once for one accelerator, with launch methods that pick the grid from the shapes.
/// Launches are asynchronous on the accelerator's default stream; nothing here copies to or from the host or
/// waits, so a whole forward pass is one queue of launches and the caller synchronises once at the end.
/// The same kernels run on CUDA, OpenCL and the CPU accelerator: only the lane exchange (a type argument) and
/// the warp size differ.
/// </summary>
internal sealed class KernelSet
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, float, int, float, int> _normQuantize;
    private Action<KernelConfig, ArrayView<uint>, ArrayView<float>, ArrayView<int>, ArrayView<float>, StackedOutputs, SpecializedValue<int>, SpecializedValue<int>, int, int, int, int> _matMul;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int> _rmsNorm;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int> _rope;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, SpecializedValue<int>, int, int> _attentionPrefill;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, SpecializedValue<int>, int, int, int> _attentionDecode;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int> _attentionCombine;
    private Action<KernelConfig, ArrayView<uint>, ArrayView<int>, ArrayView<float>, int> _embedding;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> _gather;
    private Action<KernelConfig, ArrayView<uint>, ArrayView<float>, ArrayView<float>, int, int, int, SpecializedValue<int>> _lmHead;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, int> _argMax;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int> _topKPartial;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int> _topKMerge;
    private Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, float, float, float> _sample;

    /// <param name="accelerator">The device.</param>
    /// <param name="exchange">How lanes combine values; null picks by device: shuffles on CUDA and the CPU
    /// accelerator, shared memory on OpenCL (ILGPU 1.5.3 emits OpenCL subgroup shuffles only for Intel).</param>
    public KernelSet(Accelerator accelerator, LaneExchangeKind? exchange = null)
    {
        Accelerator = accelerator;
        Exchange = exchange ?? (accelerator.AcceleratorType == AcceleratorType.OpenCL ? LaneExchangeKind.SharedMemory : LaneExchangeKind.Shuffle);
        WarpSize = Exchange == LaneExchangeKind.Shuffle ? accelerator.WarpSize : SharedMemoryLanes.LogicalWidth;
        WarpsPerGroup = Math.Clamp(Math.Min(accelerator.MaxNumThreadsPerGroup, SharedMemoryLanes.MaxGroupThreads) / WarpSize, 1, 4);
        GroupSize = Exchange == LaneExchangeKind.Shuffle
            ? Math.Max(1, Math.Min(accelerator.MaxNumThreadsPerGroup, GroupReduce.MaxWarps * WarpSize) / WarpSize) * WarpSize
            : WarpSize * WarpsPerGroup;
        if (Exchange == LaneExchangeKind.Shuffle)
        {
            Load<ShuffleLanes>();
        }
        else
        {
            Load<SharedMemoryLanes>();
        }
    }

    public LaneExchangeKind Exchange { get; }

    [MemberNotNull(
        nameof(_normQuantize),
        nameof(_matMul),
        nameof(_rmsNorm),
        nameof(_rope),
        nameof(_attentionPrefill),
        nameof(_attentionDecode),
        nameof(_attentionCombine),
        nameof(_embedding),
        nameof(_gather),
        nameof(_lmHead),
        nameof(_argMax),
        nameof(_topKPartial),
        nameof(_topKMerge),
        nameof(_sample))]
    private void Load<TLanes>()
        where TLanes : struct, ILaneExchange
    {
        _normQuantize = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, float, int, float, int>(Kernels.NormQuantize.Kernel<TLanes>);
        _matMul = Accelerator.LoadStreamKernel<ArrayView<uint>, ArrayView<float>, ArrayView<int>, ArrayView<float>, StackedOutputs, SpecializedValue<int>, SpecializedValue<int>, int, int, int, int>(Kernels.TernaryMatMul.Kernel<TLanes>);
        _rmsNorm = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int>(Kernels.RmsNorm.Kernel<TLanes>);
        _rope = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int>(Kernels.Rope.Kernel);
        _attentionPrefill = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, SpecializedValue<int>, int, int>(Kernels.AttentionPrefill.Kernel<TLanes>);
        _attentionDecode = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, SpecializedValue<int>, int, int, int>(Kernels.AttentionDecode.Kernel<TLanes>);
        _attentionCombine = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int>(Kernels.AttentionDecode.Combine);
        _embedding = Accelerator.LoadStreamKernel<ArrayView<uint>, ArrayView<int>, ArrayView<float>, int>(Kernels.Embedding.Kernel);
        _gather = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(Kernels.GatherRows.Kernel);
        _lmHead = Accelerator.LoadStreamKernel<ArrayView<uint>, ArrayView<float>, ArrayView<float>, int, int, int, SpecializedValue<int>>(Kernels.LmHead.Kernel<TLanes>);
        _argMax = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, int>(Kernels.ArgMax.Kernel<TLanes>);
        _topKPartial = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>(Kernels.TopK.Partial<TLanes>);
        _topKMerge = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int>(Kernels.TopK.Merge<TLanes>);
        _sample = Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, float, float, float>(Sampling.Kernel);
    }

    public Accelerator Accelerator { get; }

    /// <summary>Lanes per (logical) warp: the launch group of the one-warp kernels.</summary>
    public int WarpSize { get; }

    /// <summary>Warps per group of the row-parallel kernels (ternary matmul, LM head, element-wise): 4 where the device allows.</summary>
    public int WarpsPerGroup { get; }

    /// <summary>
    /// Threads of the kernels that give a whole group to one row (norm and quantization, copies, argmax): with
    /// shuffles up to 512, so a decode token's 2560-wide row is one round of loads per thread; with the
    /// shared-memory exchange the 128 it allows.
    /// </summary>
    public int GroupSize { get; }

    /// <summary>
    /// x [rows, width] to its RMS norm (kept in <paramref name="normed"/>, which may alias x) and that quantized:
    /// int8 [rows, width / 4] packed and scales [rows, width / blockSize]. With a <see cref="Glu"/> activation x is
    /// the gate, first replaced by act(x) * <paramref name="up"/>.
    /// </summary>
    public void NormQuantize(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> normed, ArrayView<int> quantized, ArrayView<float> scales, int rows, int width, float eps, int blockSize, float absMaxFloor = 0f, ArrayView<float> up = default, int activation = Glu.None) =>
        _normQuantize(Kernels.NormQuantize.Config(rows, GroupSize), x, activation == Glu.None ? x : up, weight, normed, quantized, scales, width, eps, blockSize, absMaxFloor, activation);

    /// <summary>
    /// y [tokens, n] = W [n, k] x [tokens, k] for each matrix of the stack into its output, or y += W x with
    /// <paramref name="accumulate"/>: one launch for the stack, tiles of up to 8 tokens.
    /// </summary>
    public void TernaryMatMul(DeviceTernaryMatrix w, ArrayView<int> activations, ArrayView<float> activationScales, ReadOnlySpan<ArrayView<float>> outputs, int tokens, int activationBlock, bool accumulate = false)
    {
        if (outputs.Length != w.PartCount)
        {
            throw new ArgumentException($"{w.PartCount} stacked matrices need as many outputs, not {outputs.Length}", nameof(outputs));
        }

        // a missing part repeats the last one's end, so its rows are empty
        TernaryPart p0 = w.Part(0);
        TernaryPart p1 = w.PartCount > 1 ? w.Part(1) : p0 with { Rows = 0 };
        TernaryPart p2 = w.PartCount > 2 ? w.Part(2) : p0 with { Rows = 0 };
        var stacked = new StackedOutputs
        {
            Out0 = outputs[0],
            Out1 = w.PartCount > 1 ? outputs[1] : outputs[0],
            Out2 = w.PartCount > 2 ? outputs[2] : outputs[0],
            End0 = p0.Rows,
            End1 = p0.Rows + p1.Rows,
            End2 = p0.Rows + p1.Rows + p2.Rows,
            Scale0 = p0.TensorScale,
            Scale1 = p1.TensorScale,
            Scale2 = p2.TensorScale,
        };
        int tile = Tile(tokens);
        _matMul(
            Kernels.TernaryMatMul.Config(w.Rows, tokens, tile, WarpSize, WarpsPerGroup),
            w.Codes,
            w.Scales,
            activations,
            activationScales,
            stacked,
            SpecializedValue.New(w.Columns),
            SpecializedValue.New(tile),
            tokens,
            Math.Max(1, w.Columns / activationBlock),
            Kernels.TernaryMatMul.ActivationShift(activationBlock, w.Columns),
            accumulate ? 1 : 0);
    }

    public void RmsNorm(ArrayView<float> input, ArrayView<float> weight, ArrayView<float> output, int rows, int width, float eps, bool roundToHalf = false) =>
        _rmsNorm(Kernels.RmsNorm.Config(rows, GroupSize), input, weight, output, width, eps, roundToHalf ? 1 : 0);

    /// <summary>RoPE on q (in place) and k; the rotated keys and the values appended to each token's slot of one layer's cache.</summary>
    public void RopeAndCache(ArrayView<float> queries, ArrayView<float> keys, ArrayView<float> values, ArrayView<int> slots, ArrayView<int> positions, ArrayView<float> cos, ArrayView<float> sin, ArrayView<float> keyCache, ArrayView<float> valueCache, int tokens, int heads, int kvHeads, int headDim, int contextLength, KvRounding rounding) =>
        _rope(Kernels.Rope.Config(tokens, heads, kvHeads, WarpSize), queries, keys, values, slots, positions, cos, sin, keyCache, valueCache, heads, kvHeads, headDim, contextLength, (int)rounding);

    public void AttentionPrefill(ArrayView<float> queries, ArrayView<float> keyCache, ArrayView<float> valueCache, ArrayView<int> slots, ArrayView<int> positions, ArrayView<float> output, int tokens, int heads, int kvHeads, int headDim, int contextLength, bool roundQueryToHalf = false) =>
        _attentionPrefill(Kernels.AttentionPrefill.Config(tokens, heads, WarpSize), queries, keyCache, valueCache, slots, positions, output, heads, kvHeads, SpecializedValue.New(headDim), contextLength, roundQueryToHalf ? 1 : 0);

    /// <summary>Split-KV attention: <paramref name="partials"/> holds [tokens, heads, splits, headDim + 2].</summary>
    public void AttentionDecode(ArrayView<float> queries, ArrayView<float> keyCache, ArrayView<float> valueCache, ArrayView<int> slots, ArrayView<int> positions, ArrayView<float> partials, ArrayView<float> output, int tokens, int heads, int kvHeads, int headDim, int contextLength, int splits, int splitLength, bool roundQueryToHalf = false)
    {
        _attentionDecode(Kernels.AttentionDecode.Config(tokens, heads, splits, WarpSize), queries, keyCache, valueCache, slots, positions, partials, heads, kvHeads, SpecializedValue.New(headDim), contextLength, splitLength, roundQueryToHalf ? 1 : 0);
        _attentionCombine(Kernels.AttentionDecode.CombineConfig(tokens, heads, WarpSize), partials, output, heads, headDim, splits);
    }

    public void Embedding(ArrayView<uint> table, ArrayView<int> tokens, ArrayView<float> output, int count, int hidden) =>
        _embedding(Kernels.Embedding.Config(count, GroupSize), table, tokens, output, hidden);

    public void GatherRows(ArrayView<float> input, ArrayView<int> rows, ArrayView<float> output, int count, int width) =>
        _gather(Kernels.GatherRows.Config(count, GroupSize), input, rows, output, width);

    public void LmHead(ArrayView<uint> table, ArrayView<float> input, ArrayView<float> logits, int rows, int vocab, int hidden)
    {
        int tile = Tile(rows);
        _lmHead(Kernels.LmHead.Config(vocab, rows, tile, WarpSize, WarpsPerGroup), table, input, logits, vocab, hidden, rows, SpecializedValue.New(tile));
    }

    /// <summary>The tile a matmul or LM-head launch specialises for: 1 for a single row (the others' code compiles away), else 8.</summary>
    private static int Tile(int rows) => rows == 1 ? 1 : TileSums.MaxRows;

    public void ArgMax(ArrayView<float> logits, ArrayView<int> result, int rows, int width) =>
        _argMax(Kernels.ArgMax.Config(rows, GroupSize), logits, result, width);

    /// <summary>Top k of each row; <paramref name="candidateValues"/> and <paramref name="candidateIds"/> hold [rows, slices(width), k].</summary>
    public void TopK(ArrayView<float> logits, ArrayView<float> candidateValues, ArrayView<int> candidateIds, ArrayView<float> topValues, ArrayView<int> topIds, int rows, int width, int k)
    {
        _topKPartial(Kernels.TopK.PartialConfig(rows, width, WarpSize), logits, candidateValues, candidateIds, width, k);
        _topKMerge(Kernels.TopK.MergeConfig(rows, WarpSize), candidateValues, candidateIds, topValues, topIds, Kernels.TopK.Slices(width) * k, k);
    }

    public void Sample(ArrayView<float> topValues, ArrayView<int> topIds, ArrayView<float> uniforms, ArrayView<int> tokens, int rows, int k, float temperature, float topP, float minP) =>
        _sample(Sampling.Config(rows, WarpSize), topValues, topIds, uniforms, tokens, k, temperature, topP, minP);
}
