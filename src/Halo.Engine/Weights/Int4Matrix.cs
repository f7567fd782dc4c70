using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Halo.Engine.Weights;

/// <summary>
/// A dense matrix [rows, cols] quantized to symmetric 4-bit weights, w ~ q * groupScale * rowScale with
/// q in -8..7 and one signed 8-bit group scale per <see cref="GroupScaledMatrix.GroupSize"/> columns relative to a
/// float scale per row: the LM head at a quarter of the bytes of F16 (4.3 bits per weight with the scales). Placing
/// each group's largest-magnitude weight on -8 (<see cref="GroupScaledMatrix"/>) measured 20% less KL divergence than
/// -7..7.
/// <para>
/// Two-level scales keep the whole dot product of a row in integers: the kernel multiplies the 4-bit codes by
/// the int8 input (vpmaddubsw), weights each pair sum with its group scale (vpmaddwd) and converts to float
/// once per row. The codes are stored as q + 8 (0..15), so a row's dot is sum(code * x) - 8 * sum_g(s_g * sum_g(x)),
/// the second term taken once per row from the per-token group sums of x.
/// </para>
/// <para>
/// A tile's blocks (see <see cref="GroupScaledMatrix"/> for the tile): [Cols/128][TileRows][64 bytes]: byte j of row i
/// in block b holds column 128b + j in its low nibble and column 128b + 64 + j in its high nibble.
/// </para>
/// </summary>
public sealed unsafe class Int4Matrix : GroupScaledMatrix
{
    public const int BlockBytes = BlockCols / 2;   // one row's share of a block
    public const int MinQ = -8;
    public const int MaxQ = 7;

    private Int4Matrix(int rows, int cols, int groupSize, WeightArena? memory = null)
        : base(rows, cols, groupSize, BlockBytes, MinQ, "4-bit", memory)
    {
    }

    /// <summary>Bytes of the one block that holds the tiles (what a repack cache stores).</summary>
    public static long ArenaBytes(int rows, int cols, int groupSize) => ArenaBytes(rows, cols, groupSize, BlockBytes);

    /// <summary>A matrix whose tiles <paramref name="cached"/> (an arena of <see cref="ArenaBytes(int, int, int)"/> from a
    /// repack cache) holds already; disposing the matrix disposes it.</summary>
    public static Int4Matrix Over(int rows, int cols, int groupSize, WeightArena cached) => new(rows, cols, groupSize, cached);

    /// <summary>The code q in -8..7 of weight (r, c); the weight is q * GroupScale(r, c / GroupSize) * RowScale(r).</summary>
    public int Code(int r, int c)
    {
        byte packed = Tile(r / TileRows)[HeaderBytes + (long)(c / BlockCols) * TileRows * BlockBytes + (r % TileRows) * BlockBytes + c % BlockBytes];
        return (c % BlockCols < BlockBytes ? packed & 0xF : packed >> 4) - 8;
    }

    /// <summary>Quantizes the first <paramref name="rows"/> rows of a dense F32/F16/BF16 matrix, in parallel; see
    /// <see cref="GroupScaledMatrix.QuantizeFrom"/> for <paramref name="consumed"/>.</summary>
    public static Int4Matrix Quantize(DenseMatrix source, int rows, int groupSize, Action<nint, long>? consumed = null)
    {
        var m = new Int4Matrix(rows, source.Cols, groupSize);
        m.QuantizeFrom(source, rows, consumed);
        return m;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    protected override void WriteCodes(int t, int i, float* row, float* inverse)
    {
        byte* tile = Tile(t);
        for (int b = 0; b < PaddedCols / BlockCols; b++)
        {
            byte* codes = tile + HeaderBytes + (long)b * TileRows * BlockBytes + i * BlockBytes;
            float* low = row + b * BlockCols, high = low + BlockBytes;
            int j = 0;
            if (Avx512F.IsSupported)
            {
                // 16 columns never straddle a group (groups are 32 or 64 wide).
                for (; j < BlockBytes; j += 16)
                {
                    Vector512<int> lo = Code(Vector512.Load(low + j) * inverse[(b * BlockCols + j) / GroupSize]);
                    Vector512<int> hi = Code(Vector512.Load(high + j) * inverse[(b * BlockCols + BlockBytes + j) / GroupSize]);
                    Avx512F.ConvertToVector128Byte(lo | (hi << 4)).Store(codes + j);
                }
            }

            for (; j < BlockBytes; j++)
            {
                int lo = Code(low[j] * inverse[(b * BlockCols + j) / GroupSize]);
                int hi = Code(high[j] * inverse[(b * BlockCols + BlockBytes + j) / GroupSize]);
                codes[j] = (byte)(lo | (hi << 4));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Code(float scaled) => Math.Clamp((int)MathF.Round(scaled), MinQ, MaxQ) + 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Code(Vector512<float> scaled) =>
        Vector512.Clamp(Avx512F.ConvertToVector512Int32(scaled), Vector512.Create(MinQ), Vector512.Create(MaxQ)) + Vector512.Create(8);
}
