using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Core.Formats;

namespace Halo.Engine.Weights;

/// <summary>
/// What the 4-bit and 6-bit LM heads (<see cref="Int4Matrix"/>, <see cref="Int6Matrix"/>) share: symmetric codes with
/// one signed 8-bit scale per group of <see cref="GroupSize"/> columns relative to a float scale per row, stored in tiles
/// of <see cref="TileRows"/> rows that one thread reads front to back:
/// <code>
/// tile t: header [HeaderBytes]: float rowScale[TileRows], then byte groupScale[TileRows][ScaleStride], zero padded to 64
///         blocks [Cols/128]: the tile's rows' codes for 128 columns, rowBlockBytes per row (laid out by the subclass)
/// </code>
/// Columns are padded with zeros to a multiple of 128 and the last tile with zero rows. Each group's scale is set so
/// that its weight of largest magnitude lands exactly on the most negative code (as llama.cpp's Q4_0 does): every code
/// is used, and the step is max|w| / -minQ.
/// </summary>
public abstract unsafe class GroupScaledMatrix : IDisposable
{
    public const int TileRows = 4;
    public const int BlockCols = 128;
    public const int MaxScale = 127;

    // The kernels' int32 lanes and offset corrections are sized for rows of at most this many columns.
    public const int MaxCols = 16384;

    private const int TilesPerPiece = 128;   // 512 rows quantized (and their source released) per claimed piece

    // 1 / s for the group scales s = -127..127 (0 for 0): no division per group at load.
    private static readonly float[] Reciprocals = Enumerable.Range(-MaxScale, 2 * MaxScale + 1).Select(s => s == 0 ? 0f : 1f / s).ToArray();

    private readonly WeightArena _memory;
    private readonly int _minQ;
    private byte* _data;

    /// <summary>One fresh, zeroed block (see WeightArena), or a read-only arena over a repack cache that holds the
    /// tiles already; codes run from <paramref name="minQ"/> to -minQ - 1.</summary>
    protected GroupScaledMatrix(int rows, int cols, int groupSize, int rowBlockBytes, int minQ, string kind, WeightArena? memory, long extraBytes = 0)
    {
        if (groupSize is not (32 or 64))
        {
            throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, $"the {kind} group size must be 32 or 64 columns");
        }

        if (cols is < 1 or > MaxCols)
        {
            throw new ArgumentOutOfRangeException(nameof(cols), cols, $"a {kind} matrix holds 1 to {MaxCols} columns");
        }

        _minQ = minQ;
        Rows = rows;
        Cols = cols;
        GroupSize = groupSize;
        PaddedCols = PaddedColumns(cols);
        Groups = PaddedCols / groupSize;
        ScaleStride = StrideOfScales(PaddedCols, groupSize);
        HeaderBytes = HeaderLength(ScaleStride);
        TileBytes = HeaderBytes + (long)TileRows * (PaddedCols / BlockCols) * rowBlockBytes;
        Tiles = (rows + TileRows - 1) / TileRows;
        _memory = memory ?? new WeightArena(ArenaBytes(rows, cols, groupSize, rowBlockBytes, extraBytes));
        _data = _memory.Take(Tiles * TileBytes);
    }

    /// <summary>The block that holds the tiles.</summary>
    public WeightArena Memory => _memory;

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

    internal static int PaddedColumns(int cols) => (cols + BlockCols - 1) / BlockCols * BlockCols;

    /// <summary>Bytes of the one block that holds the tiles and a subclass's <paramref name="extraBytes"/> after them
    /// (what a repack cache stores).</summary>
    protected static long ArenaBytes(int rows, int cols, int groupSize, int rowBlockBytes, long extraBytes = 0)
    {
        int padded = PaddedColumns(cols);
        long tileBytes = HeaderLength(StrideOfScales(padded, groupSize)) + (long)TileRows * (padded / BlockCols) * rowBlockBytes;
        long tiles = WeightArena.SliceBytes((rows + TileRows - 1) / TileRows * tileBytes);
        return extraBytes == 0 ? tiles : tiles + WeightArena.SliceBytes(extraBytes);
    }

    private static int StrideOfScales(int paddedCols, int groupSize) => (paddedCols / groupSize + 15) / 16 * 16;

    private static int HeaderLength(int scaleStride) => (TileRows * sizeof(float) + TileRows * scaleStride + 63) / 64 * 64;

    /// <summary>
    /// Quantizes the first <paramref name="rows"/> rows of a dense F32/F16/BF16 matrix into this one, in parallel: each
    /// row as floats [PaddedCols] (zero beyond Cols) gives its scales (<see cref="WriteScales"/>), then its codes
    /// (<see cref="WriteCodes"/>), in pieces of
    /// <see cref="TilesPerPiece"/> tiles claimed one at a time, so a core slowed by other work does not hold up the
    /// rest; <paramref name="consumed"/> (start, length in bytes of the source) hears of each piece's rows once done,
    /// so the caller can drop those source pages while the rest is still being read. The arena arrives zeroed (header
    /// padding, the rows that pad the last tile: zero scales, never written to y); the two steps write every other byte.
    /// </summary>
    protected void QuantizeFrom(DenseMatrix source, int rows, Action<nint, long>? consumed)
    {
        int pieces = (Tiles + TilesPerPiece - 1) / TilesPerPiece;

        // Each worker keeps one buffer for all its pieces: a row of floats [PaddedCols], then its groups' inverses [Groups].
        Parallel.For(0, pieces, () => AllocRow(PaddedCols + Groups), (piece, _, buffer) =>
        {
            float* row = (float*)buffer, inverse = row + PaddedCols;
            int start = piece * TilesPerPiece, end = Math.Min(Tiles, start + TilesPerPiece);
            for (int t = start; t < end; t++)
            {
                for (int i = 0; i < TileRows && t * TileRows + i < rows; i++)
                {
                    ReadRow(source, t * TileRows + i, row);
                    WriteScales(t, i, row, inverse);
                    WriteCodes(t, i, row, inverse);
                }
            }

            if (consumed is not null)
            {
                long rowBytes = (long)source.Cols * (source.Type == GgmlType.F32 ? 4 : 2);
                int first = start * TileRows, last = Math.Min(rows, end * TileRows);
                consumed((nint)(source.Data + first * rowBytes), (last - first) * rowBytes);
            }

            return buffer;
        }, buffer => NativeMemory.AlignedFree((void*)buffer));
    }

    /// <summary>Row i of tile t's codes into the blocks, from its floats [PaddedCols] (zero beyond Cols) and
    /// <paramref name="inverse"/> [Groups], what turns a weight of each group into its code (<see cref="WriteScales"/>).</summary>
    protected abstract void WriteCodes(int t, int i, float* row, float* inverse);

    /// <summary>
    /// Row i of tile t's scales from its floats: s_g = e / minQ per group, e its weight of largest magnitude (so e is code
    /// minQ); the row scale maps the largest |s_g| to 127. Fills <paramref name="inverse"/> [Groups] with what turns a
    /// weight into its code: the reciprocal of the 8-bit scale actually stored, so that the scale's own rounding is
    /// not added on top of the codes' error.
    /// </summary>
    private void WriteScales(int t, int i, float* row, float* inverse)
    {
        byte* tile = Tile(t);
        sbyte* groupScales = (sbyte*)tile + TileRows * sizeof(float) + i * ScaleStride;
        float largest = 0f;
        for (int g = 0; g < Groups; g++)
        {
            float exact = Extreme(row + g * GroupSize, GroupSize) / _minQ;
            inverse[g] = exact;
            largest = MathF.Max(largest, MathF.Abs(exact));
        }

        float toScale = largest > 0 ? MaxScale / largest : 0f;
        ((float*)tile)[i] = largest / MaxScale;
        for (int g = 0; g < Groups; g++)
        {
            int s = (int)MathF.Round(inverse[g] * toScale);
            groupScales[g] = (sbyte)s;
            inverse[g] = Reciprocals[s + MaxScale] * toScale;
        }
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

        GC.SuppressFinalize(this);
    }
}
