using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>Greedy decoding on the device: the index of the largest logit of each row (lowest index on ties). One warp per row.</summary>
internal static class ArgMax
{
    /// <param name="logits">[rows, width].</param>
    /// <param name="result">[rows].</param>
    public static void Kernel(ArrayView<float> logits, ArrayView<int> result, int width)
    {
        long start = (long)Grid.IdxX * width;
        float best = float.NegativeInfinity;
        int bestIndex = -1;
        for (int i = Warp.LaneIdx; i < width; i += Warp.WarpSize)
        {
            float value = logits[start + i];
            if (DeviceMath.IsBetter(value, i, best, bestIndex))
            {
                best = value;
                bestIndex = i;
            }
        }

        DeviceMath.WarpArgMax(ref best, ref bestIndex);
        if (Warp.IsFirstLane)
        {
            result[Grid.IdxX] = bestIndex;
        }
    }

    public static KernelConfig Config(int rows, int warpSize) => new(rows, warpSize);
}
