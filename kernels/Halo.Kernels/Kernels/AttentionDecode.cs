using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Attention for a few query tokens over long contexts (decode), split over the KV length ("flash decoding"):
/// one warp per (token, query head, split) handles <c>splitLength</c> cached positions and writes a partial
/// (max, sum, unnormalised output); <see cref="Combine"/> merges the splits with the log-sum-exp rule. With
/// batch 1 and 20 heads a single warp per head would leave most of a GPU idle at 4k positions; splitting
/// keeps every compute unit streaming the cache. Same GQA and causal rule as <see cref="AttentionPrefill"/>.
/// </summary>
internal static class AttentionDecode
{
    /// <param name="partials">[tokens, heads, splits, headDim + 2]: max, sum, then the weighted value sum.</param>
    public static void Kernel<TLanes>(
        ArrayView<float> queries,
        ArrayView<float> keyCache,
        ArrayView<float> valueCache,
        ArrayView<int> slots,
        ArrayView<int> positions,
        ArrayView<float> partials,
        int heads,
        int kvHeads,
        SpecializedValue<int> specializedHeadDim,
        int contextLength,
        int splitLength,
        int roundQueryToHalf)
        where TLanes : struct, ILaneExchange
    {
        // a constant head dimension lets the compiler unroll the per-position dot products and issue their loads together
        int headDim = specializedHeadDim.Value;
        var tileWeights = SharedMemory.Allocate<float>(AttentionTile.MaxTile);
        var query = SharedMemory.Allocate<float>(AttentionTile.MaxHeadDim);
        var accumulator = SharedMemory.Allocate<float>(AttentionTile.MaxHeadDim);
        int splits = Grid.DimY;
        int split = Grid.IdxY;
        int token = Grid.IdxX / heads;
        int head = Grid.IdxX - token * heads;
        int kvHead = head / (heads / kvHeads);
        long rowStart = ((long)token * heads + head) * headDim;
        long cacheStart = ((long)slots[token] * kvHeads + kvHead) * contextLength * headDim;
        long cacheLength = (long)contextLength * headDim;
        int begin = split * splitLength;
        int end = XMath.Min(begin + splitLength, positions[token] + 1);

        AttentionTile.Begin(queries, rowStart, query, accumulator, headDim, 1f / XMath.Sqrt(headDim), roundQueryToHalf);
        var state = new AttentionTile.State { Max = float.NegativeInfinity, Sum = 0f };
        state = AttentionTile.Attend<TLanes>(
            query,
            accumulator,
            tileWeights,
            keyCache.SubView(cacheStart, cacheLength),
            valueCache.SubView(cacheStart, cacheLength),
            headDim,
            begin,
            end,
            state);

        long partial = (((long)token * heads + head) * splits + split) * (headDim + 2);
        if (Group.IdxX == 0)
        {
            partials[partial] = state.Max;
            partials[partial + 1] = state.Sum;
        }

        for (int d = Group.IdxX; d < headDim; d += Group.DimX)
        {
            partials[partial + 2 + d] = accumulator[d];
        }
    }

    /// <summary>Merges the splits of each (token, head): out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s.</summary>
    public static void Combine(ArrayView<float> partials, ArrayView<float> output, int heads, int headDim, int splits)
    {
        int tokenHead = Grid.IdxX;
        long first = (long)tokenHead * splits * (headDim + 2);
        float max = float.NegativeInfinity;
        for (int s = 0; s < splits; s++)
        {
            max = XMath.Max(max, partials[first + s * (headDim + 2)]);
        }

        float sum = 0f;
        for (int s = 0; s < splits; s++)
        {
            long partial = first + s * (headDim + 2);
            if (partials[partial + 1] > 0f)
            {
                sum += XMath.Exp(partials[partial] - max) * partials[partial + 1];
            }
        }

        float inverseSum = 1f / sum;
        for (int d = Group.IdxX; d < headDim; d += Group.DimX)
        {
            float value = 0f;
            for (int s = 0; s < splits; s++)
            {
                long partial = first + s * (headDim + 2);
                if (partials[partial + 1] > 0f)
                {
                    value += XMath.Exp(partials[partial] - max) * partials[partial + 2 + d];
                }
            }

            output[(long)tokenHead * headDim + d] = value * inverseSum;
        }
    }

    public static KernelConfig Config(int tokens, int heads, int splits, int warpSize) =>
        new(new Index3D(tokens * heads, splits, 1), new Index3D(warpSize, 1, 1));

    public static KernelConfig CombineConfig(int tokens, int heads, int warpSize) => new(tokens * heads, warpSize);
}
