using ILGPU;
using ILGPU.Algorithms;

namespace Halo.Kernels.Kernels;

/// <summary>
/// The inner loop both attention kernels share: online softmax (flash-attention style running max and sum)
/// over a range of cached positions, one warp-width tile at a time. In a tile, lane j scores position
/// p0 + j (a full dot product over the head, no reduction needed), the warp agrees on the new maximum with one
/// butterfly, the tile's softmax weights go through shared memory (one write, one barrier, every lane reads
/// them all), and the value rows are accumulated into <c>accumulator</c> (shared memory, lane l owning
/// dimensions l, l + warp, ...). One warp per group, so the barriers are cheap and uniform.
/// </summary>
internal static class AttentionTile
{
    /// <summary>Largest head dimension the shared-memory buffers hold (BitNet 2B4T uses 128).</summary>
    public const int MaxHeadDim = 256;

    /// <summary>Largest warp (tile) the shared weight buffer holds: 64-lane GCN/CDNA waves.</summary>
    public const int MaxTile = 64;

    /// <summary>Running softmax state of one (token, head): maximum score and sum of exp(score - max).</summary>
    public struct State
    {
        public float Max;
        public float Sum;
    }

    /// <param name="query">[headDim] in shared memory, already multiplied by 1/sqrt(headDim).</param>
    /// <param name="accumulator">[headDim] in shared memory.</param>
    /// <param name="tileWeights">[MaxTile] in shared memory.</param>
    /// <param name="keys">cache rows of this (slot, kv head): position p at p * headDim.</param>
    /// <param name="values">same layout as keys.</param>
    public static State Attend<TLanes>(
        ArrayView<float> query,
        ArrayView<float> accumulator,
        ArrayView<float> tileWeights,
        ArrayView<float> keys,
        ArrayView<float> values,
        int headDim,
        int begin,
        int end,
        State state)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        int lane = Group.IdxX;
        int width = Group.DimX;
        for (int p0 = begin; p0 < end; p0 += width)
        {
            int position = p0 + lane;
            float score = float.NegativeInfinity;
            if (position < end)
            {
                long row = (long)position * headDim;
                score = 0f;
                for (int d = 0; d < headDim; d++)
                {
                    score += query[d] * keys[row + d];
                }
            }

            float newMax = XMath.Max(state.Max, lanes.Max(score));
            float correction = XMath.Exp(state.Max - newMax);
            float weight = position < end ? XMath.Exp(score - newMax) : 0f;
            state.Sum = state.Sum * correction + lanes.Sum(weight);
            state.Max = newMax;
            for (int d = lane; d < headDim; d += width)
            {
                accumulator[d] *= correction;
            }

            tileWeights[lane] = weight;
            Group.Barrier();
            int tile = end - p0 < width ? end - p0 : width;
            for (int j = 0; j < tile; j++)
            {
                float w = tileWeights[j];
                long row = (long)(p0 + j) * headDim;
                for (int d = lane; d < headDim; d += width)
                {
                    accumulator[d] += w * values[row + d];
                }
            }

            Group.Barrier(); // the next tile overwrites the weights
        }

        return state;
    }

    /// <summary>
    /// Loads the scaled query into shared memory and clears the accumulator. <c>roundQueryToHalf</c> first rounds
    /// the query to F16, as ggml does before multiplying it with an F16 key cache (<c>--compat llamacpp</c>).
    /// </summary>
    public static void Begin(ArrayView<float> queries, long queryStart, ArrayView<float> query, ArrayView<float> accumulator, int headDim, float scale, int roundQueryToHalf)
    {
        for (int d = Group.IdxX; d < headDim; d += Group.DimX)
        {
            float q = queries[queryStart + d];
            query[d] = (roundQueryToHalf != 0 ? DeviceMath.RoundToHalf(q) : q) * scale;
            accumulator[d] = 0f;
        }

        Group.Barrier();
    }
}
