using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// The LM head: <c>logits[r, v] = sum_i E[v, i] x[r, i]</c> with E the F16 table [vocab, hidden] (tied
/// embedding or <c>output.weight</c>) stored two halves per uint. One warp per vocabulary row
/// (<see cref="TileRow"/>). A group takes a tile of up to <see cref="TileSums.MaxRows"/> input rows (grid
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
        TileSums sums = TileRow.Walk(table, (long)v * pairs, pairs, lane, lanes.Width, active, inputs).WarpSums(lanes, tile);
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
    private struct TileInputs : ITileWords
    {
        public ArrayView<float> Input;
        public long FirstRow;
        public int Hidden;
        public int Tile;
        public int Rows;

        /// <summary>Adds one word's two halves times their two inputs, for each row of the tile.</summary>
        public readonly TileSums Add(TileSums sums, uint bits, int pair) =>
            sums.AddEach(
                new PairTerm
                {
                    Input = Input,
                    Low = DeviceMath.HalfToFloat(bits & 0xFFFFu),
                    High = DeviceMath.HalfToFloat(bits >> 16),
                    At = FirstRow + 2 * pair,
                    Hidden = Hidden,
                },
                Tile,
                Rows);
    }

    /// <summary>One word's two halves times their two inputs in row r of the tile.</summary>
    private struct PairTerm : ITileTerm
    {
        public ArrayView<float> Input;
        public float Low;
        public float High;
        public long At;
        public int Hidden;

        public readonly float Of(int row)
        {
            long at = At + (long)row * Hidden;
            return Low * Input[at] + High * Input[at + 1];
        }
    }
}
