using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Ternary matrix-matrix product for prefill and batched decode: <c>Y[t, n] = outScale * sum_k W[n,k] X[t,k]</c>.
/// Same weight layout and per-word arithmetic as <see cref="TernaryGemv"/>, but each warp keeps a tile of
/// <see cref="TokensPerTile"/> tokens: every weight word is loaded once and applied to all of them, cutting
/// weight traffic (the decode bottleneck) by that factor. Grid: x over output rows, y over token tiles.
/// </summary>
internal static class TernaryGemm
{
    public const int TokensPerTile = 4;

    /// <param name="weights">[n, k / 16].</param>
    /// <param name="blockScales">[n, k / 256].</param>
    /// <param name="activations">[tokens, k / 4].</param>
    /// <param name="activationScales">[tokens, k / activationBlock].</param>
    /// <param name="output">[tokens, n].</param>
    /// <param name="accumulate">1 adds the product to <paramref name="output"/> (the residual stream), 0 overwrites it.</param>
    public static void Kernel<TLanes>(
        ArrayView<uint> weights,
        ArrayView<float> blockScales,
        ArrayView<int> activations,
        ArrayView<float> activationScales,
        ArrayView<float> output,
        int n,
        int k,
        int tokens,
        int activationBlock,
        float outScale,
        int accumulate)
        where TLanes : struct, ILaneExchange
    {
        // no early exit for the tail rows: every thread of the group takes part in the reductions
        TLanes lanes = default;
        int lane = Group.IdxX % lanes.Width;
        int row = Grid.IdxX * (Group.DimX / lanes.Width) + Group.IdxX / lanes.Width;
        bool active = row < n;

        int firstToken = Grid.IdxY * TokensPerTile;
        int tileTokens = tokens - firstToken < TokensPerTile ? tokens - firstToken : TokensPerTile;
        int wordsPerRow = k / Layout.TernaryLayout.ValuesPerWord;
        int blocksPerRow = k / Layout.TernaryLayout.BlockSize;
        int activationWords = k / 4;
        int activationBlocks = k / activationBlock;
        long rowWords = (long)row * wordsPerRow;
        long rowBlocks = (long)row * blocksPerRow;

        float sum0 = 0f, sum1 = 0f, sum2 = 0f, sum3 = 0f;
        for (int word = lane; active && word < wordsPerRow; word += lanes.Width)
        {
            uint codes = weights[rowWords + word];
            float weightScale = blockScales[rowBlocks + word / 16];
            int activationScale = word * 16 / activationBlock;
            sum0 += TokenTerm(codes, weightScale, activations, activationScales, firstToken, word, activationWords, activationBlocks, activationScale);
            if (tileTokens > 1)
            {
                sum1 += TokenTerm(codes, weightScale, activations, activationScales, firstToken + 1, word, activationWords, activationBlocks, activationScale);
            }

            if (tileTokens > 2)
            {
                sum2 += TokenTerm(codes, weightScale, activations, activationScales, firstToken + 2, word, activationWords, activationBlocks, activationScale);
            }

            if (tileTokens > 3)
            {
                sum3 += TokenTerm(codes, weightScale, activations, activationScales, firstToken + 3, word, activationWords, activationBlocks, activationScale);
            }
        }

        sum0 = lanes.Sum(sum0);
        sum1 = lanes.Sum(sum1);
        sum2 = lanes.Sum(sum2);
        sum3 = lanes.Sum(sum3);
        if (active && lane == 0)
        {
            Store(output, (long)firstToken * n + row, sum0 * outScale, accumulate);
            if (tileTokens > 1)
            {
                Store(output, (long)(firstToken + 1) * n + row, sum1 * outScale, accumulate);
            }

            if (tileTokens > 2)
            {
                Store(output, (long)(firstToken + 2) * n + row, sum2 * outScale, accumulate);
            }

            if (tileTokens > 3)
            {
                Store(output, (long)(firstToken + 3) * n + row, sum3 * outScale, accumulate);
            }
        }
    }

    private static float TokenTerm(
        uint codes,
        float weightScale,
        ArrayView<int> activations,
        ArrayView<float> activationScales,
        int token,
        int word,
        int activationWords,
        int activationBlocks,
        int activationScale)
    {
        long a = (long)token * activationWords + word * 4;
        int dot = DeviceMath.TernaryDot16(codes, activations[a], activations[a + 1], activations[a + 2], activations[a + 3]);
        return dot * (weightScale * activationScales[(long)token * activationBlocks + activationScale]);
    }

    /// <summary>Writes or adds one output: <c>x += y</c> rounds exactly as the separate residual add did.</summary>
    internal static void Store(ArrayView<float> output, long index, float value, int accumulate) =>
        output[index] = accumulate != 0 ? output[index] + value : value;

    public static KernelConfig Config(int n, int tokens, int warpSize, int warpsPerGroup) =>
        new(
            new Index3D((n + warpsPerGroup - 1) / warpsPerGroup, (tokens + TokensPerTile - 1) / TokensPerTile, 1),
            new Index3D(warpsPerGroup * warpSize, 1, 1));
}
