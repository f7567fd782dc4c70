using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// The LM head: <c>logits[r, v] = sum_i E[v, i] x[r, i]</c> with E the F16 table [vocab, hidden] (tied
/// embedding or <c>output.weight</c>) stored two halves per uint. One warp per vocabulary row (lanes read
/// consecutive pairs, coalesced). A group takes a tile of up to <see cref="TileSums.MaxRows"/> input rows (grid
/// y): each pair of halves is loaded and converted once for all of them. At 128k x 2560 the table is the
/// largest read of a decode step (0.66 GB in F16); a batched step of 8 streams read it 8 times from memory when
/// each row had its own groups, since the table is far larger than the cache.
/// </summary>
internal static class LmHead
{
    /// <param name="table">[vocab, hidden / 2] two F16 per uint.</param>
    /// <param name="input">[rows, hidden].</param>
    /// <param name="logits">[rows, vocab].</param>
    /// <param name="specializedTile">1 for one row (the other rows' code compiles away), else <see cref="TileSums.MaxRows"/>.</param>
    public static void Kernel<TLanes>(ArrayView<uint> table, ArrayView<float> input, ArrayView<float> logits, int vocab, int hidden, int rows, SpecializedValue<int> specializedTile)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        int tile = specializedTile.Value;
        int lane = Group.IdxX % lanes.Width;
        int v = Grid.IdxX * (Group.DimX / lanes.Width) + Group.IdxX / lanes.Width;
        bool active = v < vocab;

        var inputs = new TileInputs
        {
            Input = input,
            FirstRow = (long)Grid.IdxY * tile * hidden,
            Hidden = hidden,
            Tile = tile,
            Rows = rows - Grid.IdxY * tile < tile ? rows - Grid.IdxY * tile : tile,
        };
        int pairs = hidden / 2;
        long weights = (long)v * pairs;
        var sums = default(TileSums);
        int p = lane;
        int step = lanes.Width;
        for (; active && p + 3 * step < pairs; p += 4 * step)
        {
            // four words' loads in flight before the first is used (the head is the step's largest read); the adds keep the one-word order
            uint bits0 = table[weights + p];
            uint bits1 = table[weights + p + step];
            uint bits2 = table[weights + p + 2 * step];
            uint bits3 = table[weights + p + 3 * step];
            sums = inputs.Add(sums, bits0, p);
            sums = inputs.Add(sums, bits1, p + step);
            sums = inputs.Add(sums, bits2, p + 2 * step);
            sums = inputs.Add(sums, bits3, p + 3 * step);
        }

        for (; active && p < pairs; p += step)
        {
            sums = inputs.Add(sums, table[weights + p], p);
        }

        sums = sums.WarpSums(lanes, tile);
        // lane r writes row r's logit (and r + width's, where a warp is narrower than the tile)
        for (int r = lane; active && r < inputs.Rows; r += lanes.Width)
        {
            logits[((long)Grid.IdxY * tile + r) * vocab + v] = sums.Get(r);
        }
    }

    public static KernelConfig Config(int vocab, int rows, int tile, int warpSize, int warpsPerGroup) =>
        new(
            new Index3D((vocab + warpsPerGroup - 1) / warpsPerGroup, (rows + tile - 1) / tile, 1),
            new Index3D(warpsPerGroup * warpSize, 1, 1));

    /// <summary>The tile of input rows every pair of halves is multiplied with.</summary>
    private struct TileInputs
    {
        public ArrayView<float> Input;
        public long FirstRow;
        public int Hidden;
        public int Tile;
        public int Rows;

        /// <summary>Adds one word's two halves times their two inputs, for each row of the tile.</summary>
        public readonly TileSums Add(TileSums sums, uint bits, int pair)
        {
            float low = DeviceMath.HalfToFloat(bits & 0xFFFFu);
            float high = DeviceMath.HalfToFloat(bits >> 16);
            long at = FirstRow + 2 * pair;
            sums.S0 += PairDot(low, high, at);
            if (Tile > 1)
            {
                // the tile is a constant: one row's launch compiles none of this
                if (Rows > 1)
                {
                    sums.S1 += PairDot(low, high, at + Hidden);
                }

                if (Rows > 2)
                {
                    sums.S2 += PairDot(low, high, at + 2L * Hidden);
                }

                if (Rows > 3)
                {
                    sums.S3 += PairDot(low, high, at + 3L * Hidden);
                }

                if (Rows > 4)
                {
                    sums.S4 += PairDot(low, high, at + 4L * Hidden);
                }

                if (Rows > 5)
                {
                    sums.S5 += PairDot(low, high, at + 5L * Hidden);
                }

                if (Rows > 6)
                {
                    sums.S6 += PairDot(low, high, at + 6L * Hidden);
                }

                if (Rows > 7)
                {
                    sums.S7 += PairDot(low, high, at + 7L * Hidden);
                }
            }

            return sums;
        }

        private readonly float PairDot(float low, float high, long at) => low * Input[at] + high * Input[at + 1];
    }
}
