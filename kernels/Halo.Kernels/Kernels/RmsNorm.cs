using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// <c>y = x / sqrt(mean(x^2) + eps) * weight</c> per row. One warp per row: the sum of squares is one warp
/// reduction, no shared memory. <c>roundToHalf</c> rounds the result to F16 (llama.cpp's LM-head input under
/// <c>--compat llamacpp</c>).
/// </summary>
internal static class RmsNorm
{
    /// <param name="input">[rows, width].</param>
    /// <param name="weight">[width].</param>
    /// <param name="output">[rows, width] (may alias input).</param>
    public static void Kernel<TLanes>(ArrayView<float> input, ArrayView<float> weight, ArrayView<float> output, int width, float eps, int roundToHalf)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        long start = (long)Grid.IdxX * width;
        float sumSquares = 0f;
        for (int i = Group.IdxX; i < width; i += Group.DimX)
        {
            float v = input[start + i];
            sumSquares += v * v;
        }

        sumSquares = lanes.Sum(sumSquares);
        float inverseRms = 1f / XMath.Sqrt(sumSquares / width + eps);
        for (int i = Group.IdxX; i < width; i += Group.DimX)
        {
            float y = input[start + i] * inverseRms * weight[i];
            output[start + i] = roundToHalf != 0 ? DeviceMath.RoundToHalf(y) : y;
        }
    }

    public static KernelConfig Config(int rows, int warpSize) => new(rows, warpSize);
}
