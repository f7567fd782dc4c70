using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Causal attention for many query tokens (prefill chunks, batched steps): token t of slot s at position p
/// attends to cached positions 0..p of s (its own key and value are already in the cache), with GQA
/// (query head h reads kv head h / (heads / kvHeads)). One warp per (token, query head), running the shared
/// online-softmax tile loop over the whole range; output [tokens, heads * headDim].
/// </summary>
internal static class AttentionPrefill
{
    public static void Kernel<TLanes>(
        ArrayView<float> queries,
        ArrayView<float> keyCache,
        ArrayView<float> valueCache,
        ArrayView<int> slots,
        ArrayView<int> positions,
        ArrayView<float> output,
        int heads,
        int kvHeads,
        SpecializedValue<int> specializedHeadDim,
        int contextLength,
        int roundQueryToHalf)
        where TLanes : struct, ILaneExchange
    {
        // a constant head dimension lets the compiler unroll the per-position dot products and issue their loads together
        int headDim = specializedHeadDim.Value;
        var tileWeights = SharedMemory.Allocate<float>(AttentionTile.MaxTile);
        var query = SharedMemory.Allocate<float>(AttentionTile.MaxHeadDim);
        var accumulator = SharedMemory.Allocate<float>(AttentionTile.MaxHeadDim);
        int token = Grid.IdxX / heads;
        int head = Grid.IdxX - token * heads;
        int kvHead = head / (heads / kvHeads);
        long rowStart = ((long)token * heads + head) * headDim;
        long cacheStart = ((long)slots[token] * kvHeads + kvHead) * contextLength * headDim;
        long cacheLength = (long)contextLength * headDim;

        AttentionTile.Begin(queries, rowStart, query, accumulator, headDim, 1f / XMath.Sqrt(headDim), roundQueryToHalf);
        var state = new AttentionTile.State { Max = float.NegativeInfinity, Sum = 0f };
        state = AttentionTile.Attend<TLanes>(
            query,
            accumulator,
            tileWeights,
            keyCache.SubView(cacheStart, cacheLength),
            valueCache.SubView(cacheStart, cacheLength),
            headDim,
            0,
            positions[token] + 1,
            state);

        float inverseSum = 1f / state.Sum;
        for (int d = Group.IdxX; d < headDim; d += Group.DimX)
        {
            output[rowStart + d] = accumulator[d] * inverseSum;
        }
    }

    public static KernelConfig Config(int tokens, int heads, int warpSize) => new(tokens * heads, warpSize);
}
