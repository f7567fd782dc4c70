using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Core.Formats;

namespace Halo.Engine.Weights;

/// <summary>
/// A dense matrix [rows, cols] quantized to symmetric 6-bit weights, w ~ q * groupScale * rowScale with q in
/// -32..31 and one signed 8-bit group scale per <see cref="GroupSize"/> columns relative to a float scale per row:
/// the <see cref="Int4Matrix"/> design with 4x finer steps, 6.3 bits per weight with the scales (0.39 of F16's
/// bytes). The group scale is signed so that the group's largest-magnitude weight lands exactly on -32.
/// <para>
/// A code (q + 32, 0..63) is split into a 4-bit plane, packed exactly as the 4-bit matrix's nibbles, and a 2-bit
/// plane holding its top two bits: the kernels rebuild 64 codes with one shift and one bit select per vector
/// (the 2-bit plane shifted so the field lands on bits 4..5), then multiply them by the int8 input, whose step the
/// kernel sets per class of columns (<see cref="Backends.Cpu.Kernels.Int6MatVec"/>; vpmaddubsw,
/// pair sums <= 2 * 63 * 127), weight each pair sum with its group scale (vpmaddwd) and convert to float once per
/// row; dot = sum(code * x) - 32 * sum_g(s_g * sum_g(x)) takes back the +32 offset.
/// </para>
/// <para>
/// Layout (one sequential stream per tile of <see cref="TileRows"/> rows):
/// <code>
/// tile t: header [HeaderBytes]: float rowScale[TileRows], then byte groupScale[TileRows][ScaleStride], zero padded to 64
///         blocks [Cols/128]: nibbles [TileRows][64 bytes]: byte j holds column 128b + j (low nibble of its code)
///                                                         and column 128b + 64 + j (high nibble)
///                            top bits [TileRows][32 bytes]: bits 2k..2k+1 of byte j hold the top two bits of
///                                                           column 128b + 32k + j's code
/// </code>
/// Columns are padded with zeros (code 32) to a multiple of 128 and the last tile with zero rows.
/// </para>
/// </summary>
public sealed unsafe class Int6Matrix : IDisposable
{
    public const int TileRows = Int4Matrix.TileRows; // the same tiles: Int4Matrix.QuantizeRows feeds both
    public const int BlockCols = 128;
    public const int NibbleBytes = BlockCols / 2;        // one row's 4-bit plane of a block
    public const int TopBytes = BlockCols / 4;           // one row's 2-bit plane of a block
    public const int BlockBytes = NibbleBytes + TopBytes; // one row's share of a block
    public const int MinQ = -32;
    public const int MaxQ = 31;
    public const int Offset = 32;
    public const int MaxScale = 127;

    // The kernels' offset correction sums up to 64 groups per int32 lane (Int6MatVec.Finish).
    public const int MaxCols = 16384;

    // 1 / s for the group scales s = -127..127 (0 for 0): no division per group at load.
    private static readonly float[] Reciprocals = Enumerable.Range(-MaxScale, 2 * MaxScale + 1).Select(s => s == 0 ? 0f : 1f / s).ToArray();

    private readonly WeightArena _memory;
    private byte* _data;

    // One fresh, zeroed block (see WeightArena), or a read-only arena over a repack cache that holds the tiles already.
    private Int6Matrix(int rows, int cols, int groupSize, WeightArena? memory = null)
    {
        if (groupSize is not (32 or 64))
        {
            throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "the 6-bit group size must be 32 or 64 columns");
        }

        if (cols is < 1 or > MaxCols)
        {
            throw new ArgumentOutOfRangeException(nameof(cols), cols, $"a 6-bit matrix holds 1 to {MaxCols} columns");
        }

        Rows = rows;
        Cols = cols;
        GroupSize = groupSize;
        PaddedCols = Int4Matrix.PaddedColumns(cols);
        Groups = PaddedCols / groupSize;
        ScaleStride = (Groups + 15) / 16 * 16;
        HeaderBytes = (TileRows * sizeof(float) + TileRows * ScaleStride + 63) / 64 * 64;
        TileBytes = HeaderBytes + (long)TileRows * (PaddedCols / BlockCols) * BlockBytes;
        Tiles = (rows + TileRows - 1) / TileRows;
        _memory = memory ?? new WeightArena(ArenaBytes(rows, cols, groupSize));
        _data = _memory.Take(Tiles * TileBytes);
    }

    /// <summary>Bytes of the one block that holds the tiles (what a repack cache stores).</summary>
    public static long ArenaBytes(int rows, int cols, int groupSize)
    {
        int padded = Int4Matrix.PaddedColumns(cols);
        int scaleStride = (padded / groupSize + 15) / 16 * 16;
        long tileBytes = (TileRows * sizeof(float) + TileRows * scaleStride + 63) / 64 * 64 + (long)TileRows * (padded / BlockCols) * BlockBytes;
        return WeightArena.SliceBytes((rows + TileRows - 1) / TileRows * tileBytes);
    }

    /// <summary>A matrix whose tiles <paramref name="cached"/> (an arena of <see cref="ArenaBytes"/> from a repack
    /// cache) holds already; disposing the matrix disposes it.</summary>
    public static Int6Matrix Over(int rows, int cols, int groupSize, WeightArena cached) => new(rows, cols, groupSize, cached);

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

    /// <summary>Block b of tile t: its 4-bit planes [TileRows][64], then its 2-bit planes [TileRows][32].</summary>
    public byte* Block(int tile, int b) => Tile(tile) + HeaderBytes + (long)b * TileRows * BlockBytes;

    /// <summary>The float scale of row r.</summary>
    public float RowScale(int r) => ((float*)Tile(r / TileRows))[r % TileRows];

    /// <summary>The signed 8-bit scale of group g of row r.</summary>
    public int GroupScale(int r, int g) => ((sbyte*)Tile(r / TileRows))[TileRows * sizeof(float) + (r % TileRows) * ScaleStride + g];

    /// <summary>The code q in -32..31 of weight (r, c); the weight is q * GroupScale(r, c / GroupSize) * RowScale(r).</summary>
    public int Code(int r, int c)
    {
        byte* block = Block(r / TileRows, c / BlockCols);
        int i = r % TileRows, k = c % BlockCols;
        byte nibbles = block[i * NibbleBytes + k % NibbleBytes];
        byte top = block[TileRows * NibbleBytes + i * TopBytes + k % TopBytes];
        int low = k < NibbleBytes ? nibbles & 0xF : nibbles >> 4;
        return (low | ((top >> (2 * (k / TopBytes))) & 3) << 4) - Offset;
    }

    /// <summary>
    /// Quantizes the first <paramref name="rows"/> rows of a dense F32/F16/BF16 matrix, in parallel, calling
    /// <paramref name="consumed"/> (start, length in bytes of the source) after each stretch of rows so the
    /// caller can drop those source pages while the rest is still being read.
    /// </summary>
    public static Int6Matrix Quantize(DenseMatrix source, int rows, int groupSize, Action<nint, long>? consumed = null)
    {
        var m = new Int6Matrix(rows, source.Cols, groupSize);
        Int4Matrix.QuantizeRows(source, rows, m.Tiles, m.PaddedCols, consumed, (t, i, row) => m.QuantizeRow(t, i, (float*)row));
        return m;
    }

    /// <summary>Row i of tile t from floats [PaddedCols] (zero beyond Cols): scales into the header, codes into the planes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void QuantizeRow(int t, int i, float* row)
    {
        byte* tile = Tile(t);
        sbyte* groupScales = (sbyte*)tile + TileRows * sizeof(float) + i * ScaleStride;

        // s_g = e / -32 per group, e its weight of largest magnitude (so e is code -32); the row scale maps the
        // largest |s_g| to 127. Codes are rounded against the 8-bit scale actually stored.
        float* inverse = stackalloc float[Groups];
        float largest = 0f;
        for (int g = 0; g < Groups; g++)
        {
            float exact = Int4Matrix.Extreme(row + g * GroupSize, GroupSize) / MinQ;
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

        byte* codes = stackalloc byte[BlockCols];
        for (int b = 0; b < PaddedCols / BlockCols; b++)
        {
            float* w = row + b * BlockCols;
            int j = 0;
            if (Avx512F.IsSupported)
            {
                // 16 columns never straddle a group (groups are 32 or 64 wide).
                for (; j < BlockCols; j += 16)
                {
                    Avx512F.ConvertToVector128Byte(Code(Vector512.Load(w + j) * inverse[(b * BlockCols + j) / GroupSize])).Store(codes + j);
                }
            }

            for (; j < BlockCols; j++)
            {
                codes[j] = (byte)Code(w[j] * inverse[(b * BlockCols + j) / GroupSize]);
            }

            byte* block = Block(t, b);
            Pack(codes, block + i * NibbleBytes, block + TileRows * NibbleBytes + i * TopBytes);
        }
    }

    /// <summary>128 codes (0..63) into one row's 4-bit plane [64] and 2-bit plane [32] of a block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pack(byte* codes, byte* nibbles, byte* top)
    {
        Vector256<byte> low4 = Vector256.Create((byte)0x0F);
        for (int j = 0; j < NibbleBytes; j += 32)
        {
            ((Vector256.Load(codes + j) & low4) | ((Vector256.Load(codes + NibbleBytes + j) & low4) << 4)).Store(nibbles + j);
        }

        ((Vector256.Load(codes) >> 4)
            | ((Vector256.Load(codes + 32) >> 4) << 2)
            | ((Vector256.Load(codes + 64) >> 4) << 4)
            | ((Vector256.Load(codes + 96) >> 4) << 6)).Store(top);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Code(float scaled) => Math.Clamp((int)MathF.Round(scaled), MinQ, MaxQ) + Offset;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Code(Vector512<float> scaled) =>
        Vector512.Clamp(Avx512F.ConvertToVector512Int32(scaled), Vector512.Create(MinQ), Vector512.Create(MaxQ)) + Vector512.Create(Offset);

    public void Dispose()
    {
        if (_data != null)
        {
            _memory.Dispose();
            _data = null;
        }
    }
}
