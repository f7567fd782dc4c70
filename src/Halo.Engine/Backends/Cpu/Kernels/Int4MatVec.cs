using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// y [rows] = M x for an <see cref="Int4Matrix"/> M and x quantized per token to int8 (x ~ q * d), over a range
/// of row tiles. Per row, all in integers: codes (0..15) times q by vpmaddubsw (unsigned by signed bytes, pair
/// sums <= 2 * 15 * 127, no saturation), pair sums times the signed 8-bit group scale by vpmaddwd, then
/// dot = sum - 8 * sum_g(scale_g * groupSum_g(q)) undoes the +8 offset of the codes, and one float multiply by
/// rowScale * d. The matrix streams tile by tile, front to back, with a software prefetch ahead.
/// </summary>
public static unsafe class Int4MatVec
{
    private const int PrefetchAhead = 8192;

    public static bool UseAvx512 { get; } = Avx512BW.IsSupported;

    public static bool UseAvx2 { get; } = Avx2.IsSupported;

    /// <summary>
    /// groupSums [m.ScaleStride] = sum of q over each group of <paramref name="m"/>'s columns (zero past
    /// m.Groups); <paramref name="q"/> holds m.PaddedCols values, zero past m.Cols.
    /// </summary>
    public static void GroupSums(Int4Matrix m, sbyte* q, short* groupSums) => GroupSums(q, m.GroupSize, m.Groups, m.ScaleStride, groupSums);

    /// <summary>groupSums [scaleStride] = sum of q over each of <paramref name="groups"/> groups of <paramref name="groupSize"/> values, zero past them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void GroupSums(sbyte* q, int groupSize, int groups, int scaleStride, short* groupSums)
    {
        for (int g = 0; g < scaleStride; g++)
        {
            int sum = 0;
            if (g < groups)
            {
                sbyte* v = q + g * groupSize;
                for (int i = 0; i < groupSize; i++)
                {
                    sum += v[i];
                }
            }

            groupSums[g] = (short)sum;
        }
    }

    /// <summary>
    /// <paramref name="q"/> [m.PaddedCols] the int8 input (zero past m.Cols), <paramref name="groupSums"/>
    /// [m.ScaleStride] from <see cref="GroupSums"/>, <paramref name="d"/> its scale; writes y for the rows of
    /// tiles [tileStart, tileEnd).
    /// </summary>
    public static void Run(Int4Matrix m, sbyte* q, short* groupSums, float d, float* y, int tileStart, int tileEnd)
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
    public static void RunAvx512(Int4Matrix m, sbyte* q, short* groupSums, float d, float* y, int tileStart, int tileEnd)
    {
        const int R = Int4Matrix.TileRows;
        int blocks = m.PaddedCols / Int4Matrix.BlockCols;
        int groupsPerBlock = Int4Matrix.BlockCols / m.GroupSize;
        Vector512<byte> nibble = Vector512.Create((byte)0x0F);

        GroupScaleLanes.Avx512Controls(m.GroupSize, out Vector512<byte> lowScale, out Vector512<byte> highScale);
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            byte* scales = tile + R * sizeof(float);
            byte* codes = tile + m.HeaderBytes;
            Vector512<int> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
            for (int b = 0; b < blocks; b++)
            {
                Vector512<sbyte> x0 = Vector512.Load(q + b * Int4Matrix.BlockCols);
                Vector512<sbyte> x1 = Vector512.Load(q + b * Int4Matrix.BlockCols + 64);
                byte* s = scales + b * groupsPerBlock;
                acc0 += Block512(codes, s, x0, x1, nibble, lowScale, highScale);
                acc1 += Block512(codes + 64, s + m.ScaleStride, x0, x1, nibble, lowScale, highScale);
                acc2 += Block512(codes + 128, s + 2 * m.ScaleStride, x0, x1, nibble, lowScale, highScale);
                acc3 += Block512(codes + 192, s + 3 * m.ScaleStride, x0, x1, nibble, lowScale, highScale);
                codes += R * Int4Matrix.BlockBytes;
            }

            Finish(m, t, 0, Sum(acc0), scales, groupSums, d, y);
            Finish(m, t, 1, Sum(acc1), scales + m.ScaleStride, groupSums, d, y);
            Finish(m, t, 2, Sum(acc2), scales + 2 * m.ScaleStride, groupSums, d, y);
            Finish(m, t, 3, Sum(acc3), scales + 3 * m.ScaleStride, groupSums, d, y);
        }
    }

    /// <summary>One row's 64 code bytes (128 columns) against x: 16 int32 partial dots, group scales applied.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Block512(byte* codes, byte* scales, Vector512<sbyte> x0, Vector512<sbyte> x1,
        Vector512<byte> nibble, Vector512<byte> lowScale, Vector512<byte> highScale)
    {
        Sse.Prefetch0(codes + PrefetchAhead);
        Vector512<byte> packed = Vector512.Load(codes);
        Vector512<byte> low = packed & nibble;
        Vector512<byte> high = (packed.AsUInt16() >> 4).AsByte() & nibble;
        GroupScaleLanes.Avx512Scales(scales, lowScale, highScale, out Vector512<short> sLow, out Vector512<short> sHigh);
        return Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(low, x0), sLow)
            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(high, x1), sHigh);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunAvx2(Int4Matrix m, sbyte* q, short* groupSums, float d, float* y, int tileStart, int tileEnd)
    {
        const int R = Int4Matrix.TileRows;
        int blocks = m.PaddedCols / Int4Matrix.BlockCols;
        int groupsPerBlock = Int4Matrix.BlockCols / m.GroupSize;
        Vector256<byte> nibble = Vector256.Create((byte)0x0F);

        GroupScaleLanes.Avx2Controls(m.GroupSize, out Vector256<byte> scale0, out Vector256<byte> scale1, out Vector256<byte> scale2, out Vector256<byte> scale3);
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            byte* scales = tile + R * sizeof(float);
            for (int i = 0; i < R; i++)
            {
                byte* codes = tile + m.HeaderBytes + i * Int4Matrix.BlockBytes;
                byte* rowScales = scales + i * m.ScaleStride;
                Vector256<int> acc = default;
                for (int b = 0; b < blocks; b++)
                {
                    sbyte* x = q + b * Int4Matrix.BlockCols;
                    Sse.Prefetch0(codes + PrefetchAhead);
                    Vector256<byte> packed0 = Vector256.Load(codes), packed1 = Vector256.Load(codes + 32);
                    Vector256<byte> s = Vector256.Create(Unsafe.ReadUnaligned<uint>(rowScales + b * groupsPerBlock)).AsByte();
                    acc += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(packed0 & nibble, Vector256.Load(x)), GroupScaleLanes.Avx2Scale(s, scale0))
                        + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(packed1 & nibble, Vector256.Load(x + 32)), GroupScaleLanes.Avx2Scale(s, scale1))
                        + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent((packed0.AsUInt16() >> 4).AsByte() & nibble, Vector256.Load(x + 64)), GroupScaleLanes.Avx2Scale(s, scale2))
                        + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent((packed1.AsUInt16() >> 4).AsByte() & nibble, Vector256.Load(x + 96)), GroupScaleLanes.Avx2Scale(s, scale3));
                    codes += R * Int4Matrix.BlockBytes;
                }

                Finish(m, t, i, Vector256.Sum(Vector256.WidenLower(acc) + Vector256.WidenUpper(acc)), rowScales, groupSums, d, y);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunScalar(Int4Matrix m, sbyte* q, short* groupSums, float d, float* y, int tileStart, int tileEnd)
    {
        const int R = Int4Matrix.TileRows, HalfBlock = Int4Matrix.BlockBytes;
        int blocks = m.PaddedCols / Int4Matrix.BlockCols;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            for (int i = 0; i < R && t * R + i < m.Rows; i++)
            {
                sbyte* scales = (sbyte*)tile + R * sizeof(float) + i * m.ScaleStride;
                long dot = 0;
                for (int b = 0; b < blocks; b++)
                {
                    byte* codes = tile + m.HeaderBytes + ((long)b * R + i) * HalfBlock;
                    sbyte* x = q + b * Int4Matrix.BlockCols;
                    int low = 0, high = 0;
                    for (int j = 0; j < HalfBlock; j++)
                    {
                        low += ((codes[j] & 0xF) - 8) * x[j];
                        high += ((codes[j] >> 4) - 8) * x[HalfBlock + j];
                        if ((j + 1) % Math.Min(m.GroupSize, HalfBlock) == 0)
                        {
                            int first = b * Int4Matrix.BlockCols + j + 1 - Math.Min(m.GroupSize, HalfBlock);
                            dot += (long)low * scales[first / m.GroupSize] + (long)high * scales[(first + HalfBlock) / m.GroupSize];
                            low = high = 0;
                        }
                    }
                }

                y[t * R + i] = dot * (((float*)tile)[i] * d);
            }
        }
    }

    /// <summary>y of row i of tile t from its summed code * q * scale products: takes back the +8 code offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(Int4Matrix m, int t, int i, long sum, byte* rowScales, short* groupSums, float d, float* y)
    {
        int r = t * Int4Matrix.TileRows + i;
        if (r >= m.Rows)
        {
            return;
        }

        Vector256<int> offset = default;
        for (int g = 0; g < m.ScaleStride; g += 16)
        {
            offset += Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)rowScales + g)), Vector256.Load(groupSums + g));
        }

        long dot = sum - 8L * Vector256.Sum(Vector256.WidenLower(offset) + Vector256.WidenUpper(offset));
        y[r] = dot * (((float*)m.Tile(t))[i] * d);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Sum(Vector512<int> v) => Vector512.Sum(Vector512.WidenLower(v) + Vector512.WidenUpper(v));
}
