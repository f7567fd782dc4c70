using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// RMS norm and int8 quantization of the same row by one group: the pair in front of every ternary matmul
/// (four per layer). One launch instead of two, and the quantization reads the normalised row back while it is
/// still in the group's cache. The norm's output is kept in <c>normed</c>, which may alias the input. Before the
/// feed-forward sub-norm the input is the gate and <see cref="Glu"/> is applied on the way in.
/// </summary>
internal static class NormQuantize
{
    /// <param name="input">[rows, width]; the gate when <paramref name="activation"/> is not <see cref="Glu.None"/>, overwritten with act(gate) * up.</param>
    /// <param name="up">[rows, width] the up projection, read only with an activation.</param>
    /// <param name="weight">[width] norm weight.</param>
    /// <param name="normed">[rows, width] the normalised rows.</param>
    /// <param name="quantized">[rows, width / 4] packed int8 (see <see cref="QuantizeActivations"/>).</param>
    /// <param name="scales">[rows, width / blockSize].</param>
    public static void Kernel<TLanes>(
        ArrayView<float> input,
        ArrayView<float> up,
        ArrayView<float> weight,
        ArrayView<float> normed,
        ArrayView<int> quantized,
        ArrayView<float> scales,
        int width,
        float eps,
        int blockSize,
        float absMaxFloor,
        int activation)
        where TLanes : struct, ILaneExchange
    {
        long start = (long)Grid.IdxX * width;
        float threadAbsMax = RmsNorm.Row<TLanes>(input, up, activation, weight, normed, start, width, eps, 0);

        // one scale per row (BitNet's per-token absmax): the norm saw every value, so no pass finds the maximum
        int blocksPerRow = width / blockSize;
        float rowAbsMax = blocksPerRow == 1 ? GroupReduce.Max<TLanes>(threadAbsMax) : 0f;

        // the quantization reads values other threads of the group wrote
        MemoryFence.GroupLevel();
        Group.Barrier();
        for (int block = 0; block < blocksPerRow; block++)
        {
            long blockStart = start + (long)block * blockSize;
            float absMax = blocksPerRow == 1 ? rowAbsMax : QuantizeActivations.AbsMax<TLanes>(normed, blockStart, blockSize);
            QuantizeActivations.Write(normed, quantized, scales, blockStart, (long)Grid.IdxX * blocksPerRow + block, blockSize, absMax, absMaxFloor);
        }
    }

    public static KernelConfig Config(int rows, int groupSize) => new(rows, groupSize);
}
