using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// <c>y = x / sqrt(mean(x^2) + eps) * weight</c> per row. One group per row, each thread issuing four loads
/// before it uses them: a decode step normalises a single row, and one warp walking it one load at a time
/// measured 65 us on an H200 (2560 wide), nearly all of it memory latency. <c>roundToHalf</c> rounds the
/// result to F16 (llama.cpp's LM-head input under <c>--compat llamacpp</c>).
/// </summary>
internal static class RmsNorm
{
    /// <param name="input">[rows, width].</param>
    /// <param name="weight">[width].</param>
    /// <param name="output">[rows, width] (may alias input).</param>
    public static void Kernel<TLanes>(ArrayView<float> input, ArrayView<float> weight, ArrayView<float> output, int width, float eps, int roundToHalf)
        where TLanes : struct, ILaneExchange =>
        _ = Row<TLanes>(input, input, Glu.None, weight, output, (long)Grid.IdxX * width, width, eps, roundToHalf);

    /// <summary>
    /// Normalises the row at <paramref name="start"/> with the whole group (every thread must call it). With an
    /// <paramref name="activation"/> other than <see cref="Glu.None"/> the row is first the gated product
    /// <c>act(input) * up</c>, written over the input as it is read. Returns the largest magnitude this thread
    /// wrote (the group's maximum is the row's absmax, which saves the quantization a pass).
    /// </summary>
    internal static float Row<TLanes>(ArrayView<float> input, ArrayView<float> up, int activation, ArrayView<float> weight, ArrayView<float> output, long start, int width, float eps, int roundToHalf)
        where TLanes : struct, ILaneExchange
    {
        int stride = Group.DimX;
        float sumSquares = 0f;
        int i = Group.IdxX;
        for (; i + 3 * stride < width; i += 4 * stride)
        {
            float a = input[start + i];
            float b = input[start + i + stride];
            float c = input[start + i + 2 * stride];
            float d = input[start + i + 3 * stride];
            if (activation != Glu.None)
            {
                // each thread reads back only what it wrote here, so the second pass needs no barrier
                a = Glu.Apply(a, up[start + i], activation);
                b = Glu.Apply(b, up[start + i + stride], activation);
                c = Glu.Apply(c, up[start + i + 2 * stride], activation);
                d = Glu.Apply(d, up[start + i + 3 * stride], activation);
                input[start + i] = a;
                input[start + i + stride] = b;
                input[start + i + 2 * stride] = c;
                input[start + i + 3 * stride] = d;
            }

            sumSquares += a * a;
            sumSquares += b * b;
            sumSquares += c * c;
            sumSquares += d * d;
        }

        for (; i < width; i += stride)
        {
            float v = input[start + i];
            if (activation != Glu.None)
            {
                v = Glu.Apply(v, up[start + i], activation);
                input[start + i] = v;
            }

            sumSquares += v * v;
        }

        float inverseRms = 1f / XMath.Sqrt(GroupReduce.Sum<TLanes>(sumSquares) / width + eps);
        float absMax = 0f;
        i = Group.IdxX;
        for (; i + 3 * stride < width; i += 4 * stride)
        {
            // all loads before the first store: output may alias input, which would otherwise order them
            float a = input[start + i];
            float b = input[start + i + stride];
            float c = input[start + i + 2 * stride];
            float d = input[start + i + 3 * stride];
            float wa = weight[i];
            float wb = weight[i + stride];
            float wc = weight[i + 2 * stride];
            float wd = weight[i + 3 * stride];
            float ya = Normalize(a, inverseRms, wa, roundToHalf);
            float yb = Normalize(b, inverseRms, wb, roundToHalf);
            float yc = Normalize(c, inverseRms, wc, roundToHalf);
            float yd = Normalize(d, inverseRms, wd, roundToHalf);
            output[start + i] = ya;
            output[start + i + stride] = yb;
            output[start + i + 2 * stride] = yc;
            output[start + i + 3 * stride] = yd;
            absMax = XMath.Max(XMath.Max(absMax, XMath.Abs(ya)), XMath.Max(XMath.Abs(yb), XMath.Max(XMath.Abs(yc), XMath.Abs(yd))));
        }

        for (; i < width; i += stride)
        {
            float y = Normalize(input[start + i], inverseRms, weight[i], roundToHalf);
            output[start + i] = y;
            absMax = XMath.Max(absMax, XMath.Abs(y));
        }

        return absMax;
    }

    public static KernelConfig Config(int rows, int groupSize) => new(rows, groupSize);

    private static float Normalize(float x, float inverseRms, float weight, int roundToHalf)
    {
        float y = x * inverseRms * weight;
        return roundToHalf != 0 ? DeviceMath.RoundToHalf(y) : y;
    }
}
