namespace Halo.Kernels.Kernels;

/// <summary>
/// One lane's running sums for the rows of a tile (tokens of a ternary matmul, hidden rows of the LM head): up
/// to 8, in fields rather than an array so they stay in registers. A kernel whose tile is the constant 1 touches
/// only <see cref="S0"/>, and the rest compiles away.
/// </summary>
internal struct TileSums
{
    public const int MaxRows = 8;

    public float S0, S1, S2, S3, S4, S5, S6, S7;

    /// <summary>Each row's sum over the warp; every lane takes part, and every lane gets the totals.</summary>
    public readonly TileSums WarpSums<TLanes>(TLanes lanes, int tile)
        where TLanes : struct, ILaneExchange
    {
        if (tile > 1)
        {
            return lanes.Sum(this);
        }

        var sums = this;
        sums.S0 = lanes.Sum(S0);
        return sums;
    }

    /// <summary>
    /// Adds <c>term.Of(r)</c> to row r's sum for the first <paramref name="rows"/> rows of a tile of
    /// <paramref name="tile"/>. The tile is a kernel constant: with 1, only row 0's term is compiled.
    /// </summary>
    public readonly TileSums AddEach<TTerm>(TTerm term, int tile, int rows)
        where TTerm : struct, ITileTerm
    {
        var sums = this;
        sums.S0 += term.Of(0);
        if (tile > 1)
        {
            if (rows > 1)
            {
                sums.S1 += term.Of(1);
            }

            if (rows > 2)
            {
                sums.S2 += term.Of(2);
            }

            if (rows > 3)
            {
                sums.S3 += term.Of(3);
            }

            if (rows > 4)
            {
                sums.S4 += term.Of(4);
            }

            if (rows > 5)
            {
                sums.S5 += term.Of(5);
            }

            if (rows > 6)
            {
                sums.S6 += term.Of(6);
            }

            if (rows > 7)
            {
                sums.S7 += term.Of(7);
            }
        }

        return sums;
    }

    public readonly float Get(int row) => row switch
    {
        0 => S0,
        1 => S1,
        2 => S2,
        3 => S3,
        4 => S4,
        5 => S5,
        6 => S6,
        _ => S7,
    };
}

/// <summary>One word's contribution to row r of a tile (<see cref="TileSums.AddEach"/>).</summary>
internal interface ITileTerm
{
    float Of(int row);
}
