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
        SpecializedValue<int> specializedColumns,
        int activationBlock,
        int accumulate)
        where TLanes : struct, ILaneExchange
    {
        // a constant width fixes each lane's trip count, so the compiler can unroll the row and issue its loads together
        int k = specializedColumns.Value;
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
        int step = lanes.Width;
        for (; active && word + 3 * step < wordsPerRow; word += 4 * step)
        {
            // four words' loads in flight before the first is used; the adds keep the one-word order
            uint codes0 = weights[rowWords + word];
            uint codes1 = weights[rowWords + word + step];
            uint codes2 = weights[rowWords + word + 2 * step];
            uint codes3 = weights[rowWords + word + 3 * step];
            sum += WordDot(codes0, activations, word) * WordScale(blockScales, activationScales, rowBlocks, word, activationBlock);
            sum += WordDot(codes1, activations, word + step) * WordScale(blockScales, activationScales, rowBlocks, word + step, activationBlock);
            sum += WordDot(codes2, activations, word + 2 * step) * WordScale(blockScales, activationScales, rowBlocks, word + 2 * step, activationBlock);
            sum += WordDot(codes3, activations, word + 3 * step) * WordScale(blockScales, activationScales, rowBlocks, word + 3 * step, activationBlock);
        }

        for (; active && word < wordsPerRow; word += step)
        {
            sum += WordDot(weights[rowWords + word], activations, word) * WordScale(blockScales, activationScales, rowBlocks, word, activationBlock);
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

    /// <summary>The exact integer dot product of one word's 16 codes with its 16 activations.</summary>
    private static int WordDot(uint codes, ArrayView<int> activations, int word) =>
        DeviceMath.TernaryDot16(codes, activations[word * 4], activations[word * 4 + 1], activations[word * 4 + 2], activations[word * 4 + 3]);

    /// <summary>The weight block's scale times the activation block's, for one word.</summary>
    private static float WordScale(ArrayView<float> blockScales, ArrayView<float> activationScales, long rowBlocks, int word, int activationBlock) =>
        blockScales[rowBlocks + word / 16] * activationScales[word * 16 / activationBlock];

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
