using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Ternary matrix product for decode and prefill: <c>Y[t, n] = outScale * sum_k W[n,k] X[t,k]</c> with W in the
/// repacked layout of <see cref="Layout.TernaryLayout"/> and X int8 from <see cref="QuantizeActivations"/>.
/// One warp per output row (<see cref="TileRow"/>). A group takes a tile of up to <see cref="TileSums.MaxRows"/> tokens
/// (grid y). Each weight word is loaded and turned into byte masks (<see cref="TernaryWord"/>) once and applied to
/// every token of the tile, so a batched decode step of 8 streams loads and decodes the weights once, as one
/// stream's step does. The exact integer sum of each word is scaled by (weight block scale * activation block
/// scale), as llama.cpp's vec_dot_tq2_0_q8_K does per block. The rows may be up to three matrices stacked (q, k
/// and v; gate and up), each with its own output and tensor scale (<see cref="StackedOutputs"/>): a token's
/// projections are one launch, not three.
/// </summary>
internal static class TernaryMatMul
{
    /// <param name="weights">[n, k / 16] packed ternary codes.</param>
    /// <param name="blockScales">[n, k / 256] weight block scales.</param>
    /// <param name="activations">[tokens, k / 4] packed int8 activations.</param>
    /// <param name="activationScales">[tokens, scalesPerToken]: word w of a row takes scale w >> activationShift.</param>
    /// <param name="outputs">where each stacked matrix's rows go, [tokens, its rows]; n = <c>outputs.End2</c>.</param>
    /// <param name="specializedTile">1 when the launch has one token (the other tokens' code compiles away), else <see cref="TileSums.MaxRows"/>.</param>
    /// <param name="accumulate">1 adds the product to the output (the residual stream), 0 overwrites it.</param>
    public static void Kernel<TLanes>(
        ArrayView<uint> weights,
        ArrayView<float> blockScales,
        ArrayView<int> activations,
        ArrayView<float> activationScales,
        StackedOutputs outputs,
        SpecializedValue<int> specializedColumns,
        SpecializedValue<int> specializedTile,
        int tokens,
        int scalesPerToken,
        int activationShift,
        int accumulate)
        where TLanes : struct, ILaneExchange
    {
        // a constant width fixes each lane's trip count, so the compiler can unroll the row and issue its loads together
        int k = specializedColumns.Value;
        int tile = specializedTile.Value;
        // no early exit for the tail rows: every thread of the group takes part in the reductions
        TLanes lanes = default;
        int lane = Group.IdxX % lanes.Width;
        int row = Grid.IdxX * (Group.DimX / lanes.Width) + Group.IdxX / lanes.Width;
        bool active = row < outputs.End2;
        int firstToken = Grid.IdxY * tile;
        var inputs = new TileInputs
        {
            BlockScales = blockScales,
            Activations = activations,
            ActivationScales = activationScales,
            RowBlocks = (long)row * (k / Layout.TernaryLayout.BlockSize),
            FirstToken = firstToken,
            Tile = tile,
            Tokens = tokens - firstToken < tile ? tokens - firstToken : tile,
            ActivationWords = k / 4,
            ScalesPerToken = scalesPerToken,
            ActivationShift = activationShift,
        };

        int wordsPerRow = k / Layout.TernaryLayout.ValuesPerWord;
        TileSums sums = TileRow.Walk(weights, (long)row * wordsPerRow, wordsPerRow, lane, lanes.Width, active, inputs).WarpSums(lanes, tile);
        // lane t writes token t's output (and t + width's, where a warp is narrower than the tile)
        for (int t = lane; active && t < inputs.Tokens; t += lanes.Width)
        {
            float sum = sums.Get(t);
            long token = firstToken + t;
            if (row < outputs.End0)
            {
                Store(outputs.Out0, token * outputs.End0 + row, sum * outputs.Scale0, accumulate);
            }
            else if (row < outputs.End1)
            {
                Store(outputs.Out1, token * (outputs.End1 - outputs.End0) + row - outputs.End0, sum * outputs.Scale1, accumulate);
            }
            else
            {
                Store(outputs.Out2, token * (outputs.End2 - outputs.End1) + row - outputs.End1, sum * outputs.Scale2, accumulate);
            }
        }
    }

    /// <summary>Writes or adds one output: <c>x += y</c> rounds exactly as the separate residual add did.</summary>
    internal static void Store(ArrayView<float> output, long index, float value, int accumulate) =>
        output[index] = accumulate != 0 ? output[index] + value : value;

    public static KernelConfig Config(int n, int tokens, int tile, int warpSize, int warpsPerGroup) =>
        new(
            new Index3D((n + warpsPerGroup - 1) / warpsPerGroup, (tokens + tile - 1) / tile, 1),
            new Index3D(warpsPerGroup * warpSize, 1, 1));

    /// <summary>
    /// Which activation scale word w of a row takes, as a shift: llama.cpp's 256-wide blocks are 16 words
    /// (shift 4); a per-token scale (block = k) is always the first (shift 31). A shift, because a division per
    /// word cost as much as the word's arithmetic.
    /// </summary>
    public static int ActivationShift(int activationBlock, int k)
    {
        if (activationBlock >= k)
        {
            return 31;
        }

        int words = activationBlock / Layout.TernaryLayout.ValuesPerWord;
        if (words < 1 || activationBlock % Layout.TernaryLayout.ValuesPerWord != 0 || (words & (words - 1)) != 0)
        {
            throw new ArgumentException($"activation block {activationBlock} must be k or a power-of-two multiple of {Layout.TernaryLayout.ValuesPerWord}", nameof(activationBlock));
        }

        return System.Numerics.BitOperations.Log2((uint)words);
    }

    /// <summary>What every word of a group's row reads besides the weights: its tile of tokens and their scales.</summary>
    private struct TileInputs : ITileWords
    {
        public ArrayView<float> BlockScales;
        public ArrayView<int> Activations;
        public ArrayView<float> ActivationScales;
        public long RowBlocks;
        public int FirstToken;
        public int Tile;
        public int Tokens;
        public int ActivationWords;
        public int ScalesPerToken;
        public int ActivationShift;

        /// <summary>Adds one weight word's product with each token of the tile.</summary>
        public readonly TileSums Add(TileSums sums, uint codes, int word) =>
            sums.AddEach(
                new WordTerm
                {
                    Inputs = this,
                    Masks = TernaryWord.From(codes),
                    WeightScale = BlockScales[RowBlocks + word / 16],
                    Word = word,
                    Scale = word >> ActivationShift,
                },
                Tile,
                Tokens);
    }

    /// <summary>One word's product with token r of the tile, its integer dot product times both block scales.</summary>
    private struct WordTerm : ITileTerm
    {
        public TileInputs Inputs;
        public TernaryWord Masks;
        public float WeightScale;
        public int Word;
        public int Scale;

        public readonly float Of(int row)
        {
            long token = Inputs.FirstToken + row;
            long a = token * Inputs.ActivationWords + Word * 4;
            int dot = Masks.Dot(Inputs.Activations[a], Inputs.Activations[a + 1], Inputs.Activations[a + 2], Inputs.Activations[a + 3]);
            return dot * (WeightScale * Inputs.ActivationScales[token * Inputs.ScalesPerToken + Scale]);
        }
    }
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
