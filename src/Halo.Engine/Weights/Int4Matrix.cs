using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Core.Formats;

namespace Halo.Engine.Weights;

/// <summary>
/// A dense matrix [rows, cols] quantized to symmetric 4-bit weights, w ~ q * groupScale * rowScale with
/// q in -8..7 and one signed 8-bit group scale per <see cref="GroupSize"/> columns relative to a float scale
/// per row: the LM head at a quarter of the bytes of F16 (4.3 bits per weight with the scales). As in llama.cpp's
/// Q4_0 the group scale is signed so that the group's largest-magnitude weight lands exactly on -8: all 16 codes
/// are used and the step is max|w| / 8 rather than / 7 (measured: 20% less KL divergence than -7..7).
/// <para>
/// Two-level scales keep the whole dot product of a row in integers: the kernel multiplies the 4-bit codes by
/// the int8 input (vpmaddubsw), weights each pair sum with its group scale (vpmaddwd) and converts to float
/// once per row. The codes are stored as q + 8 (0..15), so a row's dot is sum(code * x) - 8 * sum_g(s_g * sum_g(x)),
/// the second term taken once per row from the per-token group sums of x.
/// </para>
/// <para>
/// Layout (one sequential stream per tile of <see cref="TileRows"/> rows, so a thread reads one buffer front to back):
/// <code>
/// tile t: header [HeaderBytes]: float rowScale[TileRows], then byte groupScale[TileRows][ScaleStride], zero padded to 64
///         blocks [Cols/128][TileRows][64 bytes]: byte j of row i in block b holds column 128b + j in its low nibble
///                                               and column 128b + 64 + j in its high nibble
/// </code>
/// Columns are padded with zeros to a multiple of 128 and the last tile with zero rows.
/// </para>
/// </summary>
public sealed unsafe class Int4Matrix : IDisposable
{
    public const int TileRows = 4;
    public const int BlockCols = 128;
    public const int BlockBytes = BlockCols / 2;   // one row's share of a block
    public const int MinQ = -8;
    public const int MaxQ = 7;
    public const int MaxScale = 127;

    // 1 / s for the group scales s = -127..127 (0 for 0): no division per group at load.
    private static readonly float[] Reciprocals = Enumerable.Range(-MaxScale, 2 * MaxScale + 1).Select(s => s == 0 ? 0f : 1f / s).ToArray();
    public const int MaxCols = 16384;
    private const int TilesPerPiece = 128;   // 512 rows quantized (and their source released) per claimed piece

    private readonly WeightArena _memory;
    private byte* _data;

    // One fresh, zeroed block (see WeightArena), or a read-only arena over a repack cache that holds the tiles already.
    private Int4Matrix(int rows, int cols, int groupSize, WeightArena? memory = null)
    {
        if (groupSize is not (32 or 64))
        {
            throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "the 4-bit group size must be 32 or 64 columns");
        }

        // An int32 lane of the AVX2 kernel sums cols/8 products code * x * scale <= 15 * 127 * 127.
        if (cols is < 1 or > MaxCols)
        {
            throw new ArgumentOutOfRangeException(nameof(cols), cols, $"a 4-bit matrix holds 1 to {MaxCols} columns");
        }

        Rows = rows;
        Cols = cols;
        GroupSize = groupSize;
        PaddedCols = PaddedColumns(cols);
        Groups = PaddedCols / groupSize;
        ScaleStride = (Groups + 15) / 16 * 16;
        HeaderBytes = (TileRows * sizeof(float) + TileRows * ScaleStride + 63) / 64 * 64;
        TileBytes = HeaderBytes + (long)TileRows * PaddedCols / 2;
        Tiles = (rows + TileRows - 1) / TileRows;
        _memory = memory ?? new WeightArena(ArenaBytes(rows, cols, groupSize));
        _data = _memory.Take(Tiles * TileBytes);
    }

    /// <summary>Bytes of the one block that holds the tiles (what a repack cache stores).</summary>
    public static long ArenaBytes(int rows, int cols, int groupSize)
    {
        int scaleStride = (PaddedColumns(cols) / groupSize + 15) / 16 * 16;
        long tileBytes = (TileRows * sizeof(float) + TileRows * scaleStride + 63) / 64 * 64 + (long)TileRows * PaddedColumns(cols) / 2;
        return WeightArena.SliceBytes((rows + TileRows - 1) / TileRows * tileBytes);
    }

    /// <summary>A matrix whose tiles <paramref name="cached"/> (an arena of <see cref="ArenaBytes"/> from a repack
    /// cache) holds already; disposing the matrix disposes it.</summary>
    public static Int4Matrix Over(int rows, int cols, int groupSize, WeightArena cached) => new(rows, cols, groupSize, cached);

    /// <summary>The block that holds the tiles.</summary>
    public WeightArena Memory => _memory;

    internal static int PaddedColumns(int cols) => (cols + BlockCols - 1) / BlockCols * BlockCols;

    public int Rows { get; }

    public int Cols { get; }

    public int GroupSize { get; }

    /// <summary>Columns rounded up to a whole block of 128: the length the kernel reads of x.</summary>
    public int PaddedCols { get; }

    /// <summary>Groups per row over the padded columns: the length of the per-token group sums of x.</summary>
    public int Groups { get; }

    /// <summary>Bytes of group scales per row in a tile header (Groups rounded up to 16).</summary>
    public int ScaleStride { get; }

    public int HeaderBytes { get; }

    public long TileBytes { get; }

    public int Tiles { get; }

    public byte* Data => _data;

    /// <summary>Bytes the kernel streams for the whole matrix.</summary>
    public long SizeInBytes => Tiles * TileBytes;

    public byte* Tile(int tile) => _data + tile * TileBytes;

    /// <summary>The float scale of row r.</summary>
    public float RowScale(int r) => ((float*)Tile(r / TileRows))[r % TileRows];

    /// <summary>The signed 8-bit scale of group g of row r.</summary>
    public int GroupScale(int r, int g) => ((sbyte*)Tile(r / TileRows))[TileRows * sizeof(float) + (r % TileRows) * ScaleStride + g];

    /// <summary>The code q in -8..7 of weight (r, c); the weight is q * GroupScale(r, c / GroupSize) * RowScale(r).</summary>
    public int Code(int r, int c)
    {
        byte packed = Tile(r / TileRows)[HeaderBytes + (long)(c / BlockCols) * TileRows * BlockBytes + (r % TileRows) * BlockBytes + c % BlockBytes];
        return (c % BlockCols < BlockBytes ? packed & 0xF : packed >> 4) - 8;
    }

    /// <summary>
    /// Quantizes the first <paramref name="rows"/> rows of a dense F32/F16/BF16 matrix, in parallel, calling
    /// <paramref name="consumed"/> (start, length in bytes of the source) after each stretch of rows so the
    /// caller can drop those source pages while the rest is still being read.
    /// </summary>
    public static Int4Matrix Quantize(DenseMatrix source, int rows, int groupSize, Action<nint, long>? consumed = null)
    {
        var m = new Int4Matrix(rows, source.Cols, groupSize);
        QuantizeRows(source, rows, m.Tiles, m.PaddedCols, consumed, (t, i, row) => m.QuantizeRow(t, i, (float*)row));
        return m;
    }

    /// <summary>
    /// Feeds the rows of a tiled head's source, as floats [paddedCols] (zero beyond Cols), to
    /// quantizeRow(tile, row within the tile, row), in pieces of <see cref="TilesPerPiece"/> tiles claimed one at a
    /// time, so a core slowed by other work does not hold up the rest; <paramref name="consumed"/> (start, length
    /// in bytes of the source) hears of each piece's rows once done, so the caller can drop those source pages
    /// while the rest is still being read. The arena arrives zeroed (header padding, the rows that pad the last
    /// tile: zero scales, never written to y); quantizeRow writes every other byte.
    /// </summary>
    internal static void QuantizeRows(DenseMatrix source, int rows, int tiles, int paddedCols, Action<nint, long>? consumed,
        Action<int, int, nint> quantizeRow)
    {
        int pieces = (tiles + TilesPerPiece - 1) / TilesPerPiece;

        // Each worker keeps one float row buffer for all its pieces.
        Parallel.For(0, pieces, () => AllocRow(paddedCols), (piece, _, row) =>
        {
            int start = piece * TilesPerPiece, end = Math.Min(tiles, start + TilesPerPiece);
            for (int t = start; t < end; t++)
            {
                for (int i = 0; i < TileRows && t * TileRows + i < rows; i++)
                {
                    ReadRow(source, t * TileRows + i, (float*)row);
                    quantizeRow(t, i, row);
                }
            }

            if (consumed is not null)
            {
                long rowBytes = (long)source.Cols * (source.Type == GgmlType.F32 ? 4 : 2);
                int first = start * TileRows, last = Math.Min(rows, end * TileRows);
                consumed((nint)(source.Data + first * rowBytes), (last - first) * rowBytes);
            }

            return row;
        }, row => NativeMemory.AlignedFree((void*)row));
    }

    private static nint AllocRow(int cols)
    {
        float* row = (float*)NativeMemory.AlignedAlloc((nuint)cols * sizeof(float), 64);
        new Span<float>(row, cols).Clear();
        return (nint)row;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ReadRow(DenseMatrix source, int r, float* row)
    {
        if (source.Type == GgmlType.F16 && Avx512F.IsSupported && source.Cols % 16 == 0)
        {
            ushort* h = (ushort*)source.Data + (long)r * source.Cols;
            for (int i = 0; i < source.Cols; i += 16)
            {
                HalfBits.ToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i))).Store(row + i);
            }
        }
        else
        {
            source.ReadRow(r, new Span<float>(row, source.Cols));
        }
    }

    /// <summary>Row i of tile t from floats [PaddedCols] (zero beyond Cols): scales into the header, codes into the blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void QuantizeRow(int t, int i, float* row)
    {
        byte* tile = Tile(t);
        sbyte* groupScales = (sbyte*)tile + TileRows * sizeof(float) + i * ScaleStride;

        // s_g = e / -8 per group, e its weight of largest magnitude (so e is code -8); the row scale maps the
        // largest |s_g| to 127. Codes are rounded against the 8-bit scale actually stored, so the scale's own
        // rounding is not added on top of the codes' error.
        float* inverse = stackalloc float[Groups];
        float largest = 0f;
        for (int g = 0; g < Groups; g++)
        {
            float exact = Extreme(row + g * GroupSize, GroupSize) / MinQ;
            inverse[g] = exact;
            largest = MathF.Max(largest, MathF.Abs(exact));
        }

        float rowScale = largest / MaxScale;
        float toScale = largest > 0 ? MaxScale / largest : 0f;
        ((float*)tile)[i] = rowScale;
        for (int g = 0; g < Groups; g++)
        {
            int s = (int)MathF.Round(inverse[g] * toScale);
            groupScales[g] = (sbyte)s;
            inverse[g] = Reciprocals[s + MaxScale] * toScale;
        }

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

    /// <summary>The value of largest magnitude in v [n] (the positive one on a tie); n is 32 or 64.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Extreme(float* v, int n)
    {
        float max = 0f, min = 0f;
        if (Avx512F.IsSupported)
        {
            Vector512<float> vmax = Vector512.Load(v), vmin = vmax;
            for (int i = 16; i < n; i += 16)
            {
                Vector512<float> x = Vector512.Load(v + i);
                vmax = Avx512F.Max(vmax, x);
                vmin = Avx512F.Min(vmin, x);
            }

            // Fold to [max of 4 | -min of 4] in one vector, then two in-lane swaps leave each in its half's lane 0.
            Vector256<float> max8 = Avx.Max(vmax.GetLower(), vmax.GetUpper()), min8 = Avx.Min(vmin.GetLower(), vmin.GetUpper());
            Vector256<float> both = Vector256.Create(Sse.Max(max8.GetLower(), max8.GetUpper()), -Sse.Min(min8.GetLower(), min8.GetUpper()));
            both = Avx.Max(both, Avx.Permute(both, 0b01_00_11_10));
            both = Avx.Max(both, Avx.Permute(both, 0b10_11_00_01));
            max = both.ToScalar();
            min = -both.GetUpper().ToScalar();
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                max = MathF.Max(max, v[i]);
                min = MathF.Min(min, v[i]);
            }
        }

        return -min > max ? min : max;
    }

    public void Dispose()
    {
        if (_data != null)
        {
            _memory.Dispose();
            _data = null;
        }
    }
}
