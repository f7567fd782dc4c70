using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
/// A tile's blocks (see <see cref="GroupScaledMatrix"/> for the tile; padded columns hold code 32):
/// <code>
/// block b: nibbles [TileRows][64 bytes]: byte j holds column 128b + j (low nibble of its code)
///                                        and column 128b + 64 + j (high nibble)
///          top bits [TileRows][32 bytes]: bits 2k..2k+1 of byte j hold the top two bits of column 128b + 32k + j's code
/// </code>
/// The kernels' offset correction sums up to 64 groups per int32 lane (Int6MatVec.Finish) at
/// <see cref="GroupScaledMatrix.MaxCols"/>.
/// </para>
/// <para>
/// After the tiles, <see cref="InputCorrections"/> [Tiles * TileRows][<see cref="Classes"/>] int32 serve the batched
/// kernel, which multiplies signed codes (q) by unsigned inputs (x + 128), and pairs each 16 columns of a block with
/// the next 16 of the same group (<see cref="PairedColumn"/>): per row and column class (<see cref="ClassOf"/>, the
/// int32 lane that sums it), 128 * sum over the class's columns of groupScale * q, what the +128 adds to the lane.
/// </para>
/// </summary>
public sealed unsafe class Int6Matrix : GroupScaledMatrix
{
    public const int NibbleBytes = BlockCols / 2;        // one row's 4-bit plane of a block
    public const int TopBytes = BlockCols / 4;           // one row's 2-bit plane of a block
    public const int BlockBytes = NibbleBytes + TopBytes; // one row's share of a block
    public const int MinQ = -32;
    public const int MaxQ = 31;
    public const int Offset = 32;

    /// <summary>Column classes of a block: 8 columns each, those that one int32 lane of the batched kernel sums.</summary>
    public const int Classes = BlockCols / 8;

    /// <summary>The shift that makes a signed int8 input unsigned for vpmaddubsw.</summary>
    public const int InputShift = 128;

    private readonly int* _inputCorrections;

    // Class j's group of 32 columns: classes 4g..4g+3 sum 128-bit lane g of the paired halves, columns 32g..32g+31.
    private static readonly Vector512<int> GroupOfClass = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);

    private Int6Matrix(int rows, int cols, int groupSize, WeightArena? memory = null)
        : base(rows, cols, groupSize, BlockBytes, MinQ, "6-bit", memory, CorrectionBytes(rows))
    {
        _inputCorrections = (int*)Memory.Take(CorrectionBytes(rows));
    }

    /// <summary>Bytes of the one block that holds the tiles and the input corrections (what a repack cache stores).</summary>
    public static long ArenaBytes(int rows, int cols, int groupSize) => ArenaBytes(rows, cols, groupSize, BlockBytes, CorrectionBytes(rows));

    /// <summary>
    /// The column (0..127) of a block at place a of the batched kernel's order: places 0..63 hold the even 16-column
    /// runs (columns 0..15, 32..47, 64..79, 96..111), places 64..127 the odd ones, so that the two halves' 128-bit
    /// lanes cover the same group and their vpmaddubsw pair sums can be added before one vpmaddwd by the group scale.
    /// </summary>
    public static int PairedColumn(int a) => 32 * (a % 64 / 16) + 16 * (a / 64) + a % 16;

    /// <summary><see cref="PairedRuns"/>'s selections: 128-bit lanes 0 and 2 of each half, or 1 and 3.</summary>
    public const byte EvenRuns = 0b10_00_10_00, OddRuns = 0b11_01_11_01;

    /// <summary>
    /// The even (<see cref="EvenRuns"/>) or odd (<see cref="OddRuns"/>) 16-column runs of a block's bytes, from those
    /// of columns 0..63 (<paramref name="low"/>) and 64..127 (<paramref name="high"/>): places 0..63 or 64..127 of
    /// <see cref="PairedColumn"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> PairedRuns(Vector512<byte> low, Vector512<byte> high, [ConstantExpected] byte runs) =>
        Avx512F.Shuffle4x128(low.AsUInt64(), high.AsUInt64(), runs).AsByte();

    /// <summary>The class of column c: its place's 4-byte lane in either half (4 columns of an even run, the 4
    /// columns 16 further on).</summary>
    public static int ClassOf(int c) => c % BlockCols / 32 * 4 + c % 16 / 4;

    /// <summary>Row r's <see cref="Classes"/> input corrections (see the class summary).</summary>
    public int* InputCorrections(int r) => _inputCorrections + (long)r * Classes;

    private static long CorrectionBytes(int rows) => (long)(rows + TileRows - 1) / TileRows * TileRows * Classes * sizeof(int);

    /// <summary>A matrix whose tiles <paramref name="cached"/> (an arena of <see cref="ArenaBytes(int, int, int)"/> from a
    /// repack cache) holds already; disposing the matrix disposes it.</summary>
    public static Int6Matrix Over(int rows, int cols, int groupSize, WeightArena cached) => new(rows, cols, groupSize, cached);

    /// <summary>Block b of tile t: its 4-bit planes [TileRows][64], then its 2-bit planes [TileRows][32].</summary>
    public byte* Block(int tile, int b) => Tile(tile) + HeaderBytes + (long)b * TileRows * BlockBytes;

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

    /// <summary>Quantizes the first <paramref name="rows"/> rows of a dense F32/F16/BF16 matrix, in parallel; see
    /// <see cref="GroupScaledMatrix.QuantizeFrom"/> for <paramref name="consumed"/>.</summary>
    public static Int6Matrix Quantize(DenseMatrix source, int rows, int groupSize, Action<nint, long>? consumed = null)
    {
        var m = new Int6Matrix(rows, source.Cols, groupSize);
        m.QuantizeFrom(source, rows, consumed);
        return m;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    protected override void WriteCodes(int t, int i, float* row, float* inverse)
    {
        byte* codes = stackalloc byte[BlockCols];

        // Summed on the stack and stored once: a read of a fresh arena page maps the shared zero page, and the write
        // after it then costs a TLB shootdown on every core (tripled the head's load time).
        int* corrections = stackalloc int[Classes];
        new Span<int>(corrections, Classes).Clear();
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
            AddInputCorrections(codes, b, (sbyte*)Tile(t) + TileRows * sizeof(float) + i * ScaleStride, corrections);
        }

        new Span<int>(corrections, Classes).CopyTo(new Span<int>(InputCorrections(t * TileRows + i), Classes));
    }

    /// <summary>Block b's share of a row's input corrections: 128 * groupScale * q per column, into its class (8
    /// columns of one group). With AVX-512BW the class sums of the codes come from multiply-adds by ones on the two
    /// paired halves and each class's group scale from a permute, instead of 16 scalar sums per block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AddInputCorrections(byte* codes, int b, sbyte* groupScales, int* corrections)
    {
        int groups = BlockCols / GroupSize;
        if (Avx512BW.IsSupported)
        {
            Vector512<byte> low = Vector512.Load(codes), high = Vector512.Load(codes + 64);
            Vector512<byte> even = PairedRuns(low, high, EvenRuns), odd = PairedRuns(low, high, OddRuns);
            Vector512<short> pairs = Avx512BW.MultiplyAddAdjacent(even, Vector512<sbyte>.One) + Avx512BW.MultiplyAddAdjacent(odd, Vector512<sbyte>.One);
            Vector512<int> sums = Avx512BW.MultiplyAddAdjacent(pairs, Vector512<short>.One) - Vector512.Create(8 * Offset);
            Vector512<int> scales = Avx512F.ConvertToVector512Int32(Vector128.CreateScalar(Unsafe.ReadUnaligned<uint>(groupScales + b * groups)).AsSByte());
            Vector512<int> classScales = Avx512F.PermuteVar16x32(scales, GroupOfClass >>> (GroupSize / 64));
            (Vector512.Load(corrections) + sums * classScales * InputShift).Store(corrections);
            return;
        }

        for (int j = 0; j < BlockCols; j++)
        {
            corrections[ClassOf(j)] += InputShift * groupScales[(b * BlockCols + j) / GroupSize] * (codes[j] - Offset);
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
}
