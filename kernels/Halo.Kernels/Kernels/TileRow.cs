using ILGPU;

namespace Halo.Kernels.Kernels;

/// <summary>What a tiled kernel does with one 32-bit word of a weight row: adds its products with each row of the tile.</summary>
internal interface ITileWords
{
    TileSums Add(TileSums sums, uint word, int index);
}

/// <summary>The weight-row walk the ternary matmul and the LM head share.</summary>
internal static class TileRow
{
    /// <summary>
    /// One warp's pass over the <paramref name="count"/> words of a weight row at <paramref name="start"/>: lane l
    /// takes words l, l + width, ..., so a warp reads one contiguous line a step (coalesced on NVIDIA and on RDNA
    /// wave32), with four words' loads in flight before the first is used; the adds keep the one-word order.
    /// Returns this lane's partial sums.
    /// </summary>
    public static TileSums Walk<TTile>(ArrayView<uint> words, long start, int count, int lane, int width, bool active, TTile tile)
        where TTile : struct, ITileWords
    {
        var sums = default(TileSums);
        int index = lane;
        for (; active && index + 3 * width < count; index += 4 * width)
        {
            uint word0 = words[start + index];
            uint word1 = words[start + index + width];
            uint word2 = words[start + index + 2 * width];
            uint word3 = words[start + index + 3 * width];
            sums = tile.Add(sums, word0, index);
            sums = tile.Add(sums, word1, index + width);
            sums = tile.Add(sums, word2, index + 2 * width);
            sums = tile.Add(sums, word3, index + 3 * width);
        }

        for (; active && index < count; index += width)
        {
            sums = tile.Add(sums, words[start + index], index);
        }

        return sums;
    }
}
