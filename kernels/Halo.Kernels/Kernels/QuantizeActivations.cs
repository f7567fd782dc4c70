using ILGPU;
using ILGPU.Algorithms;

namespace Halo.Kernels.Kernels;

/// <summary>
/// int8 quantization of the activations entering a ternary matmul (DESIGN.md section 2): per block of
/// <c>blockSize</c> elements, <c>q = round(127 x / absmax)</c> with ties to even, scale = absmax / 127 computed
/// as llama.cpp's Q8_K does (<c>1 / (127 / absmax)</c>), so that blockSize 256 reproduces llama.cpp and
/// blockSize = width gives BitNet's per-token absmax. <c>absMaxFloor</c> bounds the absmax from below (the engine
/// uses 1e-5 per token so a zero row does not divide by zero; 0 = llama.cpp's rule, scale 0 for a zero block).
/// A group quantizes a block, each thread issuing four loads before it uses them; <see cref="NormQuantize"/>
/// runs it after the norm. Output: four int8 per int (element e in byte e % 4), so the matmul lanes read 16
/// activations in four 32-bit loads.
/// </summary>
internal static class QuantizeActivations
{
    /// <summary>The largest magnitude of the block at <paramref name="start"/>, over the whole group (every thread must call it).</summary>
    internal static float AbsMax<TLanes>(ArrayView<float> x, long start, int blockSize)
        where TLanes : struct, ILaneExchange
    {
        int thread = Group.IdxX;
        int stride = Group.DimX;
        float absMax = 0f;
        int i = thread;
        for (; i + 3 * stride < blockSize; i += 4 * stride)
        {
            float a = x[start + i];
            float b = x[start + i + stride];
            float c = x[start + i + 2 * stride];
            float d = x[start + i + 3 * stride];
            absMax = XMath.Max(XMath.Max(absMax, XMath.Abs(a)), XMath.Max(XMath.Abs(b), XMath.Max(XMath.Abs(c), XMath.Abs(d))));
        }

        for (; i < blockSize; i += stride)
        {
            absMax = XMath.Max(absMax, XMath.Abs(x[start + i]));
        }

        return GroupReduce.Max<TLanes>(absMax);
    }

    /// <summary>Quantizes the block at <paramref name="start"/>, whose largest magnitude is <paramref name="absMax"/>, with the whole group.</summary>
    /// <param name="x">activations.</param>
    /// <param name="quantized">packed int8, the block's at <paramref name="start"/> / 4.</param>
    /// <param name="scales">dequantization scales, the block's at <paramref name="scaleIndex"/>.</param>
    internal static void Write(ArrayView<float> x, ArrayView<int> quantized, ArrayView<float> scales, long start, long scaleIndex, int blockSize, float absMax, float absMaxFloor)
    {
        int thread = Group.IdxX;
        int stride = Group.DimX;
        absMax = XMath.Max(absMax, absMaxFloor);
        float inverse = absMax > 0f ? 127f / absMax : 0f;
        if (thread == 0)
        {
            scales[scaleIndex] = absMax > 0f ? 1f / inverse : 0f;
        }

        for (int word = thread; word < blockSize / 4; word += stride)
        {
            int packed = 0;
            for (int e = 0; e < 4; e++)
            {
                int q = (int)XMath.RoundToEven(x[start + word * 4 + e] * inverse);
                q = XMath.Clamp(q, -127, 127);
                packed |= (q & 0xFF) << (8 * e);
            }

            quantized[start / 4 + word] = packed;
        }
    }
}
