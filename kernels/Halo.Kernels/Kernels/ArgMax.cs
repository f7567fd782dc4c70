using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Greedy decoding on the device: the index of the largest logit of each row (lowest index on ties). One group
/// per row, each thread issuing four loads before it compares them (a 128k vocabulary is 1000 loads a thread).
/// </summary>
internal static class ArgMax
{
    /// <param name="logits">[rows, width].</param>
    /// <param name="result">[rows].</param>
    public static void Kernel<TLanes>(ArrayView<float> logits, ArrayView<int> result, int width)
        where TLanes : struct, ILaneExchange
    {
        long start = (long)Grid.IdxX * width;
        int stride = Group.DimX;
        var best = new Candidate { Value = float.NegativeInfinity, Index = -1 };
        int i = Group.IdxX;
        for (; i + 3 * stride < width; i += 4 * stride)
        {
            float a = logits[start + i];
            float b = logits[start + i + stride];
            float c = logits[start + i + 2 * stride];
            float d = logits[start + i + 3 * stride];
            best = Better(best, a, i);
            best = Better(best, b, i + stride);
            best = Better(best, c, i + 2 * stride);
            best = Better(best, d, i + 3 * stride);
        }

        for (; i < width; i += stride)
        {
            best = Better(best, logits[start + i], i);
        }

        Candidate winner = GroupReduce.ArgMax<TLanes>(best);
        if (Group.IdxX == 0)
        {
            result[Grid.IdxX] = winner.Index;
        }
    }

    public static KernelConfig Config(int rows, int groupSize) => new(rows, groupSize);

    private static Candidate Better(Candidate best, float value, int index) =>
        DeviceMath.IsBetter(value, index, best.Value, best.Index) ? new Candidate { Value = value, Index = index } : best;
}
