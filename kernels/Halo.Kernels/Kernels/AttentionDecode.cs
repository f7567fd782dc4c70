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
/// Unlike the prefill tile (a lane per position, each lane walking its own key row), the lanes split the head
/// dimension and take <see cref="Batch"/> positions at a time: a warp reads each key and value row as whole
/// coalesced lines, with 8 rows' loads in flight, and the scores come from butterfly sums. A decode split is
/// one warp on its own, so it is bound by the latency of those rounds: a lane per position took 19 us for 20
/// positions on an H200, most of it one key row's 16 dependent load rounds.
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
        AttentionTile.State state = Attend<TLanes>(query, accumulator, keyCache.SubView(cacheStart, cacheLength), valueCache.SubView(cacheStart, cacheLength), headDim, begin, end);

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

    /// <summary>Positions a warp scores together.</summary>
    public const int Batch = TileSums.MaxRows;

    /// <summary>
    /// Online softmax over positions [begin, end) of one (slot, kv head), <see cref="Batch"/> at a time. Lane l
    /// owns dimensions l, l + warp, ... of the query and the accumulator (shared memory, written by
    /// <see cref="AttentionTile.Begin"/> with the same ownership, so no barrier is needed).
    /// </summary>
    private static AttentionTile.State Attend<TLanes>(ArrayView<float> query, ArrayView<float> accumulator, ArrayView<float> keys, ArrayView<float> values, int headDim, int begin, int end)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        int lane = Group.IdxX;
        int width = lanes.Width;   // the group is one warp; a constant width lets the loops over a lane's dimensions unroll
        var state = new AttentionTile.State { Max = float.NegativeInfinity, Sum = 0f };
        for (int p0 = begin; p0 < end; p0 += Batch)
        {
            // a batch past the end repeats the last position (a row that exists) and gives it weight 0
            var rows = new BatchRows { Last = (long)(end - 1) * headDim, First = (long)p0 * headDim, HeadDim = headDim };
            int valid = end - p0;
            TileSums scores = Scores(query, keys, rows, lane, width, headDim).WarpSums(lanes, Batch);
            float newMax = XMath.Max(state.Max, BatchMax(scores, valid));
            float correction = XMath.Exp(state.Max - newMax);
            TileSums weights = Weights(scores, valid, newMax);
            state.Sum = state.Sum * correction + weights.S0 + weights.S1 + weights.S2 + weights.S3 + weights.S4 + weights.S5 + weights.S6 + weights.S7;
            state.Max = newMax;
            Accumulate(accumulator, values, rows, weights, correction, lane, width, headDim);
        }

        return state;
    }

    /// <summary>This lane's part of the 8 positions' scores: q . k over the lane's dimensions.</summary>
    private static TileSums Scores(ArrayView<float> query, ArrayView<float> keys, BatchRows rows, int lane, int width, int headDim)
    {
        var scores = default(TileSums);
        for (int d = lane; d < headDim; d += width)
        {
            float q = query[d];
            scores.S0 += q * keys[rows.Row(0) + d];
            scores.S1 += q * keys[rows.Row(1) + d];
            scores.S2 += q * keys[rows.Row(2) + d];
            scores.S3 += q * keys[rows.Row(3) + d];
            scores.S4 += q * keys[rows.Row(4) + d];
            scores.S5 += q * keys[rows.Row(5) + d];
            scores.S6 += q * keys[rows.Row(6) + d];
            scores.S7 += q * keys[rows.Row(7) + d];
        }

        return scores;
    }

    /// <summary>The largest of the first <paramref name="valid"/> scores.</summary>
    private static float BatchMax(TileSums scores, int valid)
    {
        float max = scores.S0;
        for (int j = 1; j < Batch; j++)
        {
            max = j < valid ? XMath.Max(max, scores.Get(j)) : max;
        }

        return max;
    }

    /// <summary>exp(score - max) for the first <paramref name="valid"/> positions, 0 for those past the end.</summary>
    private static TileSums Weights(TileSums scores, int valid, float max) => new()
    {
        S0 = XMath.Exp(scores.S0 - max),
        S1 = valid > 1 ? XMath.Exp(scores.S1 - max) : 0f,
        S2 = valid > 2 ? XMath.Exp(scores.S2 - max) : 0f,
        S3 = valid > 3 ? XMath.Exp(scores.S3 - max) : 0f,
        S4 = valid > 4 ? XMath.Exp(scores.S4 - max) : 0f,
        S5 = valid > 5 ? XMath.Exp(scores.S5 - max) : 0f,
        S6 = valid > 6 ? XMath.Exp(scores.S6 - max) : 0f,
        S7 = valid > 7 ? XMath.Exp(scores.S7 - max) : 0f,
    };

    /// <summary>accumulator = accumulator * correction + sum_j weight_j v_j over this lane's dimensions.</summary>
    private static void Accumulate(ArrayView<float> accumulator, ArrayView<float> values, BatchRows rows, TileSums weights, float correction, int lane, int width, int headDim)
    {
        for (int d = lane; d < headDim; d += width)
        {
            // the 8 value loads go out together; the adds keep position order
            float v0 = values[rows.Row(0) + d];
            float v1 = values[rows.Row(1) + d];
            float v2 = values[rows.Row(2) + d];
            float v3 = values[rows.Row(3) + d];
            float v4 = values[rows.Row(4) + d];
            float v5 = values[rows.Row(5) + d];
            float v6 = values[rows.Row(6) + d];
            float v7 = values[rows.Row(7) + d];
            float accumulated = accumulator[d] * correction;
            accumulated += weights.S0 * v0;
            accumulated += weights.S1 * v1;
            accumulated += weights.S2 * v2;
            accumulated += weights.S3 * v3;
            accumulated += weights.S4 * v4;
            accumulated += weights.S5 * v5;
            accumulated += weights.S6 * v6;
            accumulated += weights.S7 * v7;
            accumulator[d] = accumulated;
        }
    }

    /// <summary>Where each position of a batch starts in the cache, the last position standing in for those past the end.</summary>
    private struct BatchRows
    {
        public long First;
        public long Last;
        public int HeadDim;

        public readonly long Row(int j) => XMath.Min(First + (long)j * HeadDim, Last);
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
