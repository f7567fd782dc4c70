using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// y [rows] = M x for an <see cref="Int6Matrix"/> M and x quantized per token to int8 (x ~ q * d), over a range
/// of row tiles: <see cref="Int4MatVec"/>'s integer dot product with 6-bit codes. Per 64 columns the codes are
/// rebuilt from the 4-bit plane and the 2-bit plane (one variable shift puts each column's two top bits on bits
/// 4..5, one bit select merges them with the nibble), then codes (0..63) times q by vpmaddubsw (pair sums
/// <= 2 * 63 * 127, no saturation), pair sums times the signed 8-bit group scale by vpmaddwd, and
/// dot = sum - 32 * sum_g(scale_g * groupSum_g(q)) undoes the +32 offset, one float multiply by rowScale * d.
/// AVX-VNNI's vpdpbusd would sum 4 products before the group scale could be applied, needing a vpmulld per
/// group instead of the vpmaddwd: no gain, so the AVX2 path uses vpmaddubsw as well.
/// </summary>
public static unsafe class Int6MatVec
{
    private const int PrefetchAhead = 8192;
    private const int R = Int6Matrix.TileRows;
    private const int TopPlane = R * Int6Matrix.NibbleBytes; // where a block's 2-bit planes start

    /// <summary>Tokens whose logits one pass of <see cref="RunBatch"/> over the head computes (the backend groups
    /// decoding sequences by the int8 head's batch, so the two are one number).</summary>
    public const int BatchTokens = Int8MatVec.BatchTokens;

    // vpshufb controls that spread the 4 group-scale bytes of a block over int16 lanes, the byte in both halves
    // so that an arithmetic shift right by 8 sign-extends it (built once: no allocation per call).
    private static readonly Vector512<byte> LowScale32 = ScaleShuffle512(32, 0), HighScale32 = ScaleShuffle512(32, 64);
    private static readonly Vector512<byte> LowScale64 = ScaleShuffle512(64, 0), HighScale64 = ScaleShuffle512(64, 64);
    private static readonly Vector256<byte> Broadcast0 = ScaleShuffle256(0), Broadcast1 = ScaleShuffle256(1);
    private static readonly Vector256<byte> Broadcast2 = ScaleShuffle256(2), Broadcast3 = ScaleShuffle256(3);

    // The 2-bit plane (32 bytes) sits in both 256-bit halves of a vector; per half, the word shift that brings the
    // field of its columns to bits 4..5: columns 0..31 bits 0..1 (left 4), 32..63 bits 2..3 (left 2),
    // 64..95 bits 4..5 (none), 96..127 bits 6..7 (right 2).
    private static readonly Vector512<ushort> LowShift = HalfShifts(4, 2), HighShift = HalfShifts(0, 2);

    public static bool UseAvx512 { get; } = Avx512BW.IsSupported;

    public static bool UseAvx2 { get; } = Avx2.IsSupported;

    /// <summary>
    /// groupSums [m.ScaleStride] = sum of q over each group of <paramref name="m"/>'s columns (zero past
    /// m.Groups); <paramref name="q"/> holds m.PaddedCols values, zero past m.Cols.
    /// </summary>
    public static void GroupSums(Int6Matrix m, sbyte* q, short* groupSums) =>
        Int4MatVec.GroupSums(q, m.GroupSize, m.Groups, m.ScaleStride, groupSums);

    /// <summary>
    /// <paramref name="q"/> [m.PaddedCols] the int8 input (zero past m.Cols), <paramref name="groupSums"/>
    /// [m.ScaleStride] from <see cref="GroupSums"/>, <paramref name="d"/> its scale; writes y for the rows of
    /// tiles [tileStart, tileEnd).
    /// </summary>
    public static void Run(Int6Matrix m, sbyte* q, short* groupSums, float d, float* y, int tileStart, int tileEnd)
    {
        if (UseAvx512)
        {
            RunAvx512(m, q, groupSums, d, y, tileStart, tileEnd);
        }
        else if (UseAvx2)
        {
            RunAvx2(m, q, groupSums, d, y, tileStart, tileEnd);
        }
        else
        {
            RunScalar(m, q, groupSums, d, y, tileStart, tileEnd);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunAvx512(Int6Matrix m, sbyte* q, short* groupSums, float d, float* y, int tileStart, int tileEnd)
    {
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        int groupsPerBlock = Int6Matrix.BlockCols / m.GroupSize;

        // Each 128-bit lane of a pair-sum vector covers 16 columns, so it takes one group's scale: the low half
        // of a block (columns 0..63) spans lanes 0..3, the high half (64..127) the same lanes of the next vector.
        Vector512<byte> lowScale = m.GroupSize == 32 ? LowScale32 : LowScale64, highScale = m.GroupSize == 32 ? HighScale32 : HighScale64;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            byte* scales = tile + R * sizeof(float);
            byte* block = tile + m.HeaderBytes;
            Vector512<int> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
            for (int b = 0; b < blocks; b++)
            {
                Prefetch(block + PrefetchAhead);
                Vector512<sbyte> x0 = Vector512.Load(q + b * Int6Matrix.BlockCols);
                Vector512<sbyte> x1 = Vector512.Load(q + b * Int6Matrix.BlockCols + 64);
                byte* s = scales + b * groupsPerBlock;
                acc0 += Block512(block, block + TopPlane, s, x0, x1, lowScale, highScale);
                acc1 += Block512(block + 64, block + TopPlane + 32, s + m.ScaleStride, x0, x1, lowScale, highScale);
                acc2 += Block512(block + 128, block + TopPlane + 64, s + 2 * m.ScaleStride, x0, x1, lowScale, highScale);
                acc3 += Block512(block + 192, block + TopPlane + 96, s + 3 * m.ScaleStride, x0, x1, lowScale, highScale);
                block += R * Int6Matrix.BlockBytes;
            }

            Finish(m, t, 0, Sum(acc0), scales, groupSums, d, y);
            Finish(m, t, 1, Sum(acc1), scales + m.ScaleStride, groupSums, d, y);
            Finish(m, t, 2, Sum(acc2), scales + 2 * m.ScaleStride, groupSums, d, y);
            Finish(m, t, 3, Sum(acc3), scales + 3 * m.ScaleStride, groupSums, d, y);
        }
    }

    /// <summary>
    /// The same for <paramref name="n"/> tokens at once (batched decode), so the head is read from memory once per
    /// step instead of once per sequence: token k's input at q + k * m.PaddedCols, its group sums at
    /// groupSums + k * m.ScaleStride, its scale d[k], its logits y[k]. AVX-512BW takes <see cref="BatchTokens"/>
    /// tokens per pass, decoding each row's codes once for all of them; elsewhere one token at a time.
    /// </summary>
    public static void RunBatch(Int6Matrix m, sbyte* q, short* groupSums, float* d, float** y, int n, int tileStart, int tileEnd)
    {
        if (UseAvx512 && n == BatchTokens)
        {
            RunBatchAvx512(m, q, groupSums, d, y, tileStart, tileEnd);
            return;
        }

        for (int k = 0; k < n; k++)
        {
            Run(m, q + (long)k * m.PaddedCols, groupSums + k * m.ScaleStride, d[k], y[k], tileStart, tileEnd);
        }
    }

    /// <summary><see cref="RunBatch"/> for <see cref="BatchTokens"/> tokens: one row at a time, one accumulator per token.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunBatchAvx512(Int6Matrix m, sbyte* q, short* groupSums, float* d, float** y, int tileStart, int tileEnd)
    {
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        int groupsPerBlock = Int6Matrix.BlockCols / m.GroupSize;
        long stride = m.PaddedCols;
        Vector512<byte> lowScale = m.GroupSize == 32 ? LowScale32 : LowScale64, highScale = m.GroupSize == 32 ? HighScale32 : HighScale64;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            for (int i = 0; i < R && t * R + i < m.Rows; i++)
            {
                byte* rowScales = tile + R * sizeof(float) + i * m.ScaleStride;
                byte* block = tile + m.HeaderBytes;
                Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int b = 0; b < blocks; b++)
                {
                    // Row 0's pass fetches the next tile; rows 1..3 find this one in cache.
                    if (i == 0)
                    {
                        Prefetch(block + PrefetchAhead);
                    }

                    Codes(block + i * Int6Matrix.NibbleBytes, block + TopPlane + i * Int6Matrix.TopBytes, out Vector512<byte> low, out Vector512<byte> high);
                    Vector512<byte> s = Vector512.Create(Unsafe.ReadUnaligned<uint>(rowScales + b * groupsPerBlock)).AsByte();
                    Vector512<short> sLow = Avx512BW.ShiftRightArithmetic(Avx512BW.Shuffle(s, lowScale).AsInt16(), 8);
                    Vector512<short> sHigh = Avx512BW.ShiftRightArithmetic(Avx512BW.Shuffle(s, highScale).AsInt16(), 8);
                    sbyte* x = q + b * Int6Matrix.BlockCols;
                    a0 += Dot(low, high, x, sLow, sHigh);
                    a1 += Dot(low, high, x + stride, sLow, sHigh);
                    a2 += Dot(low, high, x + 2 * stride, sLow, sHigh);
                    a3 += Dot(low, high, x + 3 * stride, sLow, sHigh);
                    a4 += Dot(low, high, x + 4 * stride, sLow, sHigh);
                    a5 += Dot(low, high, x + 5 * stride, sLow, sHigh);
                    a6 += Dot(low, high, x + 6 * stride, sLow, sHigh);
                    a7 += Dot(low, high, x + 7 * stride, sLow, sHigh);
                    block += R * Int6Matrix.BlockBytes;
                }

                int ss = m.ScaleStride;
                Finish(m, t, i, Sum(a0), rowScales, groupSums, d[0], y[0]);
                Finish(m, t, i, Sum(a1), rowScales, groupSums + ss, d[1], y[1]);
                Finish(m, t, i, Sum(a2), rowScales, groupSums + 2 * ss, d[2], y[2]);
                Finish(m, t, i, Sum(a3), rowScales, groupSums + 3 * ss, d[3], y[3]);
                Finish(m, t, i, Sum(a4), rowScales, groupSums + 4 * ss, d[4], y[4]);
                Finish(m, t, i, Sum(a5), rowScales, groupSums + 5 * ss, d[5], y[5]);
                Finish(m, t, i, Sum(a6), rowScales, groupSums + 6 * ss, d[6], y[6]);
                Finish(m, t, i, Sum(a7), rowScales, groupSums + 7 * ss, d[7], y[7]);
            }
        }
    }

    /// <summary>One row's block (128 columns) against x: 16 int32 partial dots, group scales applied.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Block512(byte* nibbles, byte* top, byte* scales, Vector512<sbyte> x0, Vector512<sbyte> x1,
        Vector512<byte> lowScale, Vector512<byte> highScale)
    {
        Codes(nibbles, top, out Vector512<byte> low, out Vector512<byte> high);
        Vector512<byte> s = Vector512.Create(Unsafe.ReadUnaligned<uint>(scales)).AsByte();
        return Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(low, x0), Avx512BW.ShiftRightArithmetic(Avx512BW.Shuffle(s, lowScale).AsInt16(), 8))
            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(high, x1), Avx512BW.ShiftRightArithmetic(Avx512BW.Shuffle(s, highScale).AsInt16(), 8));
    }

    /// <summary>One token's x [128] against a row's decoded block with its group scales as int16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot(Vector512<byte> low, Vector512<byte> high, sbyte* x, Vector512<short> sLow, Vector512<short> sHigh) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(low, Vector512.Load(x)), sLow)
        + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(high, Vector512.Load(x + 64)), sHigh);

    /// <summary>A row's 128 codes (0..63) of one block: columns 0..63 in <paramref name="low"/>, 64..127 in <paramref name="high"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Codes(byte* nibbles, byte* top, out Vector512<byte> low, out Vector512<byte> high)
    {
        Vector512<byte> nibble = Vector512.Create((byte)0x0F), field = Vector512.Create((byte)0x30);
        Vector512<byte> packed = Vector512.Load(nibbles);
        Vector256<byte> plane = Vector256.Load(top);
        Vector512<ushort> both = Vector512.Create(plane, plane).AsUInt16();
        low = Vector512.ConditionalSelect(nibble, packed, Avx512BW.ShiftLeftLogicalVariable(both, LowShift).AsByte() & field);
        high = Vector512.ConditionalSelect(nibble, (packed.AsUInt16() >> 4).AsByte(), Avx512BW.ShiftRightLogicalVariable(both, HighShift).AsByte() & field);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunAvx2(Int6Matrix m, sbyte* q, short* groupSums, float d, float* y, int tileStart, int tileEnd)
    {
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        int groupsPerBlock = Int6Matrix.BlockCols / m.GroupSize;
        Vector256<byte> nibble = Vector256.Create((byte)0x0F), field = Vector256.Create((byte)0x30);

        // A 256-bit vector of pair sums covers 32 columns: one group. The four quarters of a block
        // (columns 0, 32, 64, 96) take the scale of the group they start in.
        Vector256<byte> scale0 = Broadcast0, scale1 = m.GroupSize == 32 ? Broadcast1 : Broadcast0;
        Vector256<byte> scale2 = m.GroupSize == 32 ? Broadcast2 : Broadcast1, scale3 = m.GroupSize == 32 ? Broadcast3 : Broadcast1;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            byte* scales = tile + R * sizeof(float);
            for (int i = 0; i < R; i++)
            {
                byte* block = tile + m.HeaderBytes;
                byte* rowScales = scales + i * m.ScaleStride;
                Vector256<int> acc = default;
                for (int b = 0; b < blocks; b++)
                {
                    if (i == 0)
                    {
                        Prefetch(block + PrefetchAhead);
                    }

                    sbyte* x = q + b * Int6Matrix.BlockCols;
                    byte* nibbles = block + i * Int6Matrix.NibbleBytes;
                    Vector256<byte> packed0 = Vector256.Load(nibbles), packed1 = Vector256.Load(nibbles + 32);
                    Vector256<ushort> top = Vector256.Load(block + TopPlane + i * Int6Matrix.TopBytes).AsUInt16();
                    Vector256<byte> c0 = Vector256.ConditionalSelect(nibble, packed0, (top << 4).AsByte() & field);
                    Vector256<byte> c1 = Vector256.ConditionalSelect(nibble, packed1, (top << 2).AsByte() & field);
                    Vector256<byte> c2 = Vector256.ConditionalSelect(nibble, (packed0.AsUInt16() >> 4).AsByte(), top.AsByte() & field);
                    Vector256<byte> c3 = Vector256.ConditionalSelect(nibble, (packed1.AsUInt16() >> 4).AsByte(), (top >> 2).AsByte() & field);
                    Vector256<byte> s = Vector256.Create(Unsafe.ReadUnaligned<uint>(rowScales + b * groupsPerBlock)).AsByte();
                    acc += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c0, Vector256.Load(x)), Avx2.ShiftRightArithmetic(Avx2.Shuffle(s, scale0).AsInt16(), 8))
                        + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c1, Vector256.Load(x + 32)), Avx2.ShiftRightArithmetic(Avx2.Shuffle(s, scale1).AsInt16(), 8))
                        + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c2, Vector256.Load(x + 64)), Avx2.ShiftRightArithmetic(Avx2.Shuffle(s, scale2).AsInt16(), 8))
                        + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c3, Vector256.Load(x + 96)), Avx2.ShiftRightArithmetic(Avx2.Shuffle(s, scale3).AsInt16(), 8));
                    block += R * Int6Matrix.BlockBytes;
                }

                Finish(m, t, i, Vector256.Sum(Vector256.WidenLower(acc) + Vector256.WidenUpper(acc)), rowScales, groupSums, d, y);
            }
        }
    }

    /// <summary>Plain loops over the signed codes q = code - 32, one integer sum per 32 columns times its group scale.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunScalar(Int6Matrix m, sbyte* q, short* groupSums, float d, float* y, int tileStart, int tileEnd)
    {
        const int Quarter = Int6Matrix.TopBytes;
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            for (int i = 0; i < R && t * R + i < m.Rows; i++)
            {
                sbyte* scales = (sbyte*)tile + R * sizeof(float) + i * m.ScaleStride;
                long dot = 0;
                for (int b = 0; b < blocks; b++)
                {
                    byte* nibbles = m.Block(t, b) + i * Int6Matrix.NibbleBytes;
                    byte* top = m.Block(t, b) + TopPlane + i * Int6Matrix.TopBytes;
                    for (int k = 0; k < 4; k++)
                    {
                        int col = k * Quarter, sum = 0;
                        for (int j = 0; j < Quarter; j++)
                        {
                            byte packed = nibbles[(col + j) % Int6Matrix.NibbleBytes];
                            int low = k < 2 ? packed & 0xF : packed >> 4;
                            int code = low | ((top[j] >> (2 * k)) & 3) << 4;
                            sum += (code - Int6Matrix.Offset) * q[b * Int6Matrix.BlockCols + col + j];
                        }

                        dot += (long)sum * scales[(b * Int6Matrix.BlockCols + col) / m.GroupSize];
                    }
                }

                y[t * R + i] = dot * (((float*)tile)[i] * d);
            }
        }
    }

    /// <summary>y of row i of tile t from its summed code * q * scale products: takes back the +32 code offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(Int6Matrix m, int t, int i, long sum, byte* rowScales, short* groupSums, float d, float* y)
    {
        int r = t * R + i;
        if (r >= m.Rows)
        {
            return;
        }

        Vector256<int> offset = default;
        for (int g = 0; g < m.ScaleStride; g += 16)
        {
            offset += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)rowScales + g)), Vector256.Load(groupSums + g));
        }

        long dot = sum - (long)Int6Matrix.Offset * Vector256.Sum(Vector256.WidenLower(offset) + Vector256.WidenUpper(offset));
        y[r] = dot * (((float*)m.Tile(t))[i] * d);
    }

    /// <summary>The 6 cache lines of one block of a tile (4 rows' 4-bit and 2-bit planes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(byte* block)
    {
        Sse.Prefetch0(block);
        Sse.Prefetch0(block + 64);
        Sse.Prefetch0(block + 128);
        Sse.Prefetch0(block + 192);
        Sse.Prefetch0(block + 256);
        Sse.Prefetch0(block + 320);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Sum(Vector512<int> v) => Vector512.Sum(Vector512.WidenLower(v) + Vector512.WidenUpper(v));

    /// <summary>vpshufb control: int16 lane k of 128-bit lane L gets (twice) the scale byte of the group holding column firstCol + 16 L.</summary>
    private static Vector512<byte> ScaleShuffle512(int groupSize, int firstCol)
    {
        var c = new byte[64];
        for (int lane = 0; lane < 4; lane++)
        {
            for (int k = 0; k < 16; k++)
            {
                c[lane * 16 + k] = (byte)((firstCol + lane * 16) / groupSize);
            }
        }

        return Vector512.Create(c);
    }

    /// <summary>vpshufb control: every int16 lane gets scale byte <paramref name="index"/> in both halves.</summary>
    private static Vector256<byte> ScaleShuffle256(int index) => Vector256.Create((ushort)(index << 8 | index)).AsByte();

    /// <summary>Word shift counts: <paramref name="lower"/> for the low 256 bits, <paramref name="upper"/> for the high.</summary>
    private static Vector512<ushort> HalfShifts(ushort lower, ushort upper) =>
        Vector512.Create(Vector256.Create(lower), Vector256.Create(upper));
}
