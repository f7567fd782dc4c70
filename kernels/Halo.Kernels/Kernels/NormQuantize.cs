using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// RMS norm and int8 quantization of the same row by one group: the pair in front of every ternary matmul
/// (four per layer). One launch instead of two, and the quantization reads the normalised row back while it is
/// still in the group's cache. The norm's output is kept in <c>normed</c>, which may alias the input.
/// </summary>
internal static class NormQuantize
{
    /// <param name="input">[rows, width].</param>
    /// <param name="weight">[width] norm weight.</param>
    /// <param name="normed">[rows, width] the normalised rows.</param>
    /// <param name="quantized">[rows, width / 4] packed int8 (see <see cref="QuantizeActivations"/>).</param>
    /// <param name="scales">[rows, width / blockSize].</param>
    public static void Kernel<TLanes>(
        ArrayView<float> input,
        ArrayView<float> weight,
        ArrayView<float> normed,
        ArrayView<int> quantized,
        ArrayView<float> scales,
        int width,
        float eps,
        int blockSize,
        float absMaxFloor)
        where TLanes : struct, ILaneExchange
    {
        long start = (long)Grid.IdxX * width;
        RmsNorm.Row<TLanes>(input, weight, normed, start, width, eps, 0);

        // the quantization reads values other threads of the group wrote
        MemoryFence.GroupLevel();
        Group.Barrier();
        int blocksPerRow = width / blockSize;
        for (int block = 0; block < blocksPerRow; block++)
        {
            QuantizeActivations.Block<TLanes>(
                normed, quantized, scales, start + (long)block * blockSize, (long)Grid.IdxX * blocksPerRow + block, blockSize, absMaxFloor);
        }
    }

    public static KernelConfig Config(int rows, int groupSize) => new(rows, groupSize);
}
