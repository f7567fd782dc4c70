using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Ternary matrix-vector product for decode: <c>y[n] = outScale * sum_k W[n,k] x[k]</c> with W in the repacked
/// layout of <see cref="Layout.TernaryLayout"/> (16 two-bit codes per 32-bit word, rows contiguous) and x int8
/// from <see cref="QuantizeActivations"/>. One warp per output row: lane l reads words l, l + warp, ... so a warp
/// reads one contiguous 128-byte line per step (coalesced on NVIDIA and on RDNA wave32), and the 16 activations
/// of a word are four aligned 32-bit loads that hit cache across rows. The exact integer sum of each word is
/// scaled by (weight block scale * activation block scale), as llama.cpp's vec_dot_tq2_0_q8_K does per block.
/// The rows may be up to three matrices stacked (q, k and v; gate and up), each with its own output and tensor
/// scale (<see cref="StackedOutputs"/>): a decode token's projections are one launch, not three.
/// </summary>
internal static class TernaryGemv
{
    /// <param name="weights">[n, k / 16] packed ternary codes.</param>
    /// <param name="blockScales">[n, k / 256] weight block scales.</param>
    /// <param name="activations">[k / 4] packed int8 activations.</param>
    /// <param name="activationScales">[k / activationBlock].</param>
    /// <param name="outputs">where each stacked matrix's rows go; n = <c>outputs.End2</c>.</param>
    /// <param name="accumulate">1 adds the product to the output (the residual stream), 0 overwrites it.</param>
    public static void Kernel<TLanes>(
        ArrayView<uint> weights,
        ArrayView<float> blockScales,
        ArrayView<int> activations,
        ArrayView<float> activationScales,
        StackedOutputs outputs,
        int k,
        int activationBlock,
        int accumulate)
        where TLanes : struct, ILaneExchange
    {
        // no early exit for the tail rows: every thread of the group takes part in the reduction
        TLanes lanes = default;
        int lane = Group.IdxX % lanes.Width;
        int row = Grid.IdxX * (Group.DimX / lanes.Width) + Group.IdxX / lanes.Width;
        bool active = row < outputs.End2;

        int wordsPerRow = k / Layout.TernaryLayout.ValuesPerWord;
        int blocksPerRow = k / Layout.TernaryLayout.BlockSize;
        long rowWords = (long)row * wordsPerRow;
        long rowBlocks = (long)row * blocksPerRow;

        float sum = 0f;
        int word = lane;
        for (; active && word + lanes.Width < wordsPerRow; word += 2 * lanes.Width)
        {
            // two words' loads in flight before either is used; the adds keep the one-word order
            int next = word + lanes.Width;
            uint codes0 = weights[rowWords + word];
            uint codes1 = weights[rowWords + next];
            float scale0 = blockScales[rowBlocks + word / 16] * activationScales[word * 16 / activationBlock];
            float scale1 = blockScales[rowBlocks + next / 16] * activationScales[next * 16 / activationBlock];
            int dot0 = DeviceMath.TernaryDot16(
                codes0, activations[word * 4], activations[word * 4 + 1], activations[word * 4 + 2], activations[word * 4 + 3]);
            int dot1 = DeviceMath.TernaryDot16(
                codes1, activations[next * 4], activations[next * 4 + 1], activations[next * 4 + 2], activations[next * 4 + 3]);
            sum += dot0 * scale0;
            sum += dot1 * scale1;
        }

        if (active && word < wordsPerRow)
        {
            int dot = DeviceMath.TernaryDot16(
                weights[rowWords + word], activations[word * 4], activations[word * 4 + 1], activations[word * 4 + 2], activations[word * 4 + 3]);
            sum += dot * (blockScales[rowBlocks + word / 16] * activationScales[word * 16 / activationBlock]);
        }

        sum = lanes.Sum(sum);
        if (active && lane == 0)
        {
            if (row < outputs.End0)
            {
                TernaryGemm.Store(outputs.Out0, row, sum * outputs.Scale0, accumulate);
            }
            else if (row < outputs.End1)
            {
                TernaryGemm.Store(outputs.Out1, row - outputs.End0, sum * outputs.Scale1, accumulate);
            }
            else
            {
                TernaryGemm.Store(outputs.Out2, row - outputs.End1, sum * outputs.Scale2, accumulate);
            }
        }
    }

    public static KernelConfig Config(int n, int warpSize, int warpsPerGroup) =>
        new((n + warpsPerGroup - 1) / warpsPerGroup, warpsPerGroup * warpSize);
}

/// <summary>
/// The outputs of up to three row-stacked matrices: rows [0, End0) go to Out0 scaled by Scale0, [End0, End1) to
/// Out1, [End1, End2) to Out2 (a single matrix has End0 = End1 = End2 = n).
/// </summary>
internal struct StackedOutputs
{
    public ArrayView<float> Out0;
    public ArrayView<float> Out1;
    public ArrayView<float> Out2;
    public int End0;
    public int End1;
    public int End2;
    public float Scale0;
    public float Scale1;
    public float Scale2;
}
