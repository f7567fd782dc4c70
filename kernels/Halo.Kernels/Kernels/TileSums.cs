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
