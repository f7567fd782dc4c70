using ILGPU;
using ILGPU.Algorithms;

namespace Halo.Kernels.Kernels;

/// <summary>
/// The inner loop both attention kernels share: online softmax (flash-attention style running max and sum)
/// over a range of cached positions, one warp-width tile at a time. In a tile, lane j scores position
/// p0 + j (a full dot product over the head, no reduction needed), the warp agrees on the new maximum with one
/// butterfly, the tile's softmax weights go through shared memory (one write, one barrier, every lane reads
/// them all), and the value rows are accumulated into <c>accumulator</c> (shared memory, lane l owning
/// dimensions l, l + warp, ...). One warp per group, so the barriers are cheap and uniform. The loops load
/// eight keys or four values before adding them: one load at a time left a decode split waiting on memory for each
/// position (131 us for 64 positions on an H200).
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
                int d = 0;
                for (; d + 7 < headDim; d += 8)
                {
                    // eight loads (one 32-byte sector of the lane's key row) in flight before the adds, which keep their order
                    float k0 = keys[row + d];
                    float k1 = keys[row + d + 1];
                    float k2 = keys[row + d + 2];
                    float k3 = keys[row + d + 3];
                    float k4 = keys[row + d + 4];
                    float k5 = keys[row + d + 5];
                    float k6 = keys[row + d + 6];
                    float k7 = keys[row + d + 7];
                    score += query[d] * k0;
                    score += query[d + 1] * k1;
                    score += query[d + 2] * k2;
                    score += query[d + 3] * k3;
                    score += query[d + 4] * k4;
                    score += query[d + 5] * k5;
                    score += query[d + 6] * k6;
                    score += query[d + 7] * k7;
                }

                for (; d < headDim; d++)
                {
                    score += query[d] * keys[row + d];
                }
            }

            float newMax = XMath.Max(state.Max, lanes.Max(score));
            float correction = XMath.Exp(state.Max - newMax);
            float weight = position < end ? XMath.Exp(score - newMax) : 0f;
            state.Sum = state.Sum * correction + lanes.Sum(weight);
            state.Max = newMax;
            tileWeights[lane] = weight;
            Group.Barrier();
            int tile = end - p0 < width ? end - p0 : width;
            for (int d = lane; d < headDim; d += width)
            {
                // the lane's dimension stays in a register over the tile, and four value rows are loaded
                // before they are added (in position order, as one position at a time would)
                float accumulated = accumulator[d] * correction;
                long row = (long)p0 * headDim + d;
                int j = 0;
                for (; j + 3 < tile; j += 4)
                {
                    float v0 = values[row + (long)j * headDim];
                    float v1 = values[row + (long)(j + 1) * headDim];
                    float v2 = values[row + (long)(j + 2) * headDim];
                    float v3 = values[row + (long)(j + 3) * headDim];
                    accumulated += tileWeights[j] * v0;
                    accumulated += tileWeights[j + 1] * v1;
                    accumulated += tileWeights[j + 2] * v2;
                    accumulated += tileWeights[j + 3] * v3;
                }

                for (; j < tile; j++)
                {
                    accumulated += tileWeights[j] * values[row + (long)j * headDim];
                }

                accumulator[d] = accumulated;
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
