using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>Greedy decoding on the device: the index of the largest logit of each row (lowest index on ties). One warp per row.</summary>
internal static class ArgMax
{
    /// <param name="logits">[rows, width].</param>
    /// <param name="result">[rows].</param>
    public static void Kernel<TLanes>(ArrayView<float> logits, ArrayView<int> result, int width)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        long start = (long)Grid.IdxX * width;
        float best = float.NegativeInfinity;
        int bestIndex = -1;
        for (int i = Group.IdxX; i < width; i += Group.DimX)
        {
            float value = logits[start + i];
            if (DeviceMath.IsBetter(value, i, best, bestIndex))
            {
                best = value;
                bestIndex = i;
            }
        }

        Candidate winner = lanes.ArgMax(new Candidate { Value = best, Index = bestIndex });
        if (Group.IdxX == 0)
        {
            result[Grid.IdxX] = winner.Index;
        }
    }

    public static KernelConfig Config(int rows, int warpSize) => new(rows, warpSize);
}
