using ILGPU;
using ILGPU.Algorithms;

namespace Halo.Kernels.Kernels;

/// <summary>
/// int8 quantization of the activations entering a ternary matmul (DESIGN.md section 2): per block of
/// <c>blockSize</c> elements, <c>q = round(127 x / absmax)</c> with ties to even, scale = absmax / 127 computed
/// as llama.cpp's Q8_K does (<c>1 / (127 / absmax)</c>), so that blockSize 256 reproduces llama.cpp and
/// blockSize = width gives BitNet's per-token absmax. <c>absMaxFloor</c> bounds the absmax from below (the engine
/// uses 1e-5 per token so a zero row does not divide by zero; 0 = llama.cpp's rule, scale 0 for a zero block).
/// One group per (row, block), each thread issuing four loads before it uses them (a decode token's single row
/// left one warp waiting on memory, as in <see cref="RmsNorm"/>). Output: four int8 per int (element e in byte e % 4), so the GEMV lanes read
/// 16 activations in four 32-bit loads.
/// </summary>
internal static class QuantizeActivations
{
    /// <param name="x">[rows, width] activations.</param>
    /// <param name="quantized">[rows, width / 4] packed int8.</param>
    /// <param name="scales">[rows, width / blockSize] dequantization scales.</param>
    public static void Kernel<TLanes>(ArrayView<float> x, ArrayView<int> quantized, ArrayView<float> scales, int width, int blockSize, float absMaxFloor)
        where TLanes : struct, ILaneExchange
    {
        int blocksPerRow = width / blockSize;
        int row = Grid.IdxX / blocksPerRow;
        int block = Grid.IdxX - row * blocksPerRow;
        int thread = Group.IdxX;
        int stride = Group.DimX;
        long start = (long)row * width + (long)block * blockSize;

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

        absMax = XMath.Max(GroupReduce.Max<TLanes>(absMax), absMaxFloor);
        float inverse = absMax > 0f ? 127f / absMax : 0f;
        if (thread == 0)
        {
            scales[(long)row * blocksPerRow + block] = absMax > 0f ? 1f / inverse : 0f;
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

    public static KernelConfig Config(int rows, int width, int blockSize, int groupSize) =>
        new(rows * (width / blockSize), groupSize);
}
