using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Engine.Backends;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// y [tokens, rows] = (W x) * s for a repacked <see cref="TernaryMatrix"/> W and int8 activations x, over a
/// range of row tiles (one thread's share). Per 256-block the integer dot product sum(code * q) - sum(q) equals
/// sum(w * q) exactly; it is scaled by the weight block scale times the activation block scale and summed in
/// float, as llama.cpp's TQ2_0 x Q8_K dot product does. Paths: AVX-512BW, AVX2, portable scalar.
/// When every row has one scale (<see cref="TernaryMatrix.RowScales"/>) and every token one activation scale,
/// a row's dot product is one integer sum, scaled once: that path keeps 16-bit partial sums and, for batches,
/// decodes each weight block once for <see cref="TokenGroup"/> tokens (a register-blocked GEMM).
/// </summary>
public static unsafe class TernaryMatMul
{
    private const int PrefetchDistance = 8192;

    /// <summary>Tokens that share one decoded weight block in the row-scaled GEMM.</summary>
    public const int TokenGroup = 4;

    // A block adds at most 4 fields x 2 pairs x 2 x 128 = 2048 to a 16-bit lane (codes <= 2, |q| <= 128), so
    // 15 blocks stay below 32767 before the lanes are widened to 32 bits.
    private const int BlocksPerFlush = 15;

    public static bool UseAvx512 { get; set; } = Avx512BW.IsSupported;

    public static bool UseAvx2 { get; set; } = Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Computes tiles [tileStart, tileEnd) for every token; y has row stride <paramref name="yStride"/>.</summary>
    public static void Run(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd)
    {
        if (UseAvx512 && w.RowScales != null && x.Scaling == ActivationScaling.PerToken)
        {
            RunRowScaledAvx512(w, x, y, yStride, tileStart, tileEnd);
        }
        else if (UseAvx512)
        {
            RunAvx512(w, x, y, yStride, tileStart, tileEnd);
        }
        else if (UseAvx2)
        {
            RunAvx2(w, x, y, yStride, tileStart, tileEnd);
        }
        else
        {
            RunScalar(w, x, y, yStride, tileStart, tileEnd);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void RunScalar(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd)
    {
        int blocks = w.Blocks;
        for (int tile = tileStart; tile < tileEnd; tile++)
        {
            for (int t = 0; t < x.Tokens; t++)
            {
                sbyte* q = x.Q + (long)t * w.Cols;
                for (int i = 0; i < TernaryMatrix.TileRows; i++)
                {
                    int row = tile * TernaryMatrix.TileRows + i;
                    if (row >= w.Rows)
                    {
                        break;
                    }

                    float acc = 0f;
                    for (int b = 0; b < blocks; b++)
                    {
                        long index = ((long)tile * blocks + b) * TernaryMatrix.TileRows + i;
                        byte* codes = w.Codes + index * TernaryMatrix.BlockBytes;
                        sbyte* qb = q + b * 256;
                        int dot = 0;
                        for (int m = 0; m < 64; m++)
                        {
                            int c = codes[m];
                            dot += (c & 3) * qb[m] + ((c >> 2) & 3) * qb[64 + m] + ((c >> 4) & 3) * qb[128 + m] + (c >> 6) * qb[192 + m];
                        }

                        int isum = dot - x.Sum[t * blocks + b];
                        acc += isum * (x.D[t * blocks + b] * w.Scales[index]);
                    }

                    y[(long)t * yStride + row] = acc * w.TensorScale;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void RunAvx512(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd)
    {
        int blocks = w.Blocks;
        Vector512<byte> mask = Vector512.Create((byte)3);
        Vector512<short> ones = Vector512.Create((short)1);
        for (int tile = tileStart; tile < tileEnd; tile++)
        {
            byte* tileCodes = w.Codes + (long)tile * blocks * TernaryMatrix.TileRows * TernaryMatrix.BlockBytes;
            float* tileScales = w.Scales + (long)tile * blocks * TernaryMatrix.TileRows;
            for (int t = 0; t < x.Tokens; t++)
            {
                sbyte* q = x.Q + (long)t * w.Cols;
                float* d = x.D + t * blocks;
                int* sums = x.Sum + t * blocks;
                Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
                for (int b = 0; b < blocks; b++)
                {
                    byte* codes = tileCodes + b * (TernaryMatrix.TileRows * TernaryMatrix.BlockBytes);
                    Sse.Prefetch0(codes + PrefetchDistance);
                    Sse.Prefetch0(codes + PrefetchDistance + 64);
                    Sse.Prefetch0(codes + PrefetchDistance + 128);
                    Sse.Prefetch0(codes + PrefetchDistance + 192);
                    sbyte* qb = q + b * 256;
                    Vector512<sbyte> a0 = Vector512.Load(qb), a1 = Vector512.Load(qb + 64), a2 = Vector512.Load(qb + 128), a3 = Vector512.Load(qb + 192);
                    Vector512<int> correction = Vector512.CreateScalar(sums[b]);
                    float db = d[b];
                    float* s = tileScales + b * TernaryMatrix.TileRows;
                    acc0 = Block(codes, a0, a1, a2, a3, mask, ones, correction, db * s[0], acc0);
                    acc1 = Block(codes + 64, a0, a1, a2, a3, mask, ones, correction, db * s[1], acc1);
                    acc2 = Block(codes + 128, a0, a1, a2, a3, mask, ones, correction, db * s[2], acc2);
                    acc3 = Block(codes + 192, a0, a1, a2, a3, mask, ones, correction, db * s[3], acc3);
                }

                Store(w, y + (long)t * yStride, tile, Vector512.Sum(acc0), Vector512.Sum(acc1), Vector512.Sum(acc2), Vector512.Sum(acc3));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Block(byte* codes, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3,
        Vector512<byte> mask, Vector512<short> ones, Vector512<int> correction, float scale, Vector512<float> acc)
    {
        Vector512<byte> c = Vector512.Load(codes);
        Vector512<ushort> cw = c.AsUInt16();
        Vector512<byte> c0 = c & mask;
        Vector512<byte> c1 = Avx512BW.ShiftRightLogical(cw, 2).AsByte() & mask;
        Vector512<byte> c2 = Avx512BW.ShiftRightLogical(cw, 4).AsByte() & mask;
        Vector512<byte> c3 = Avx512BW.ShiftRightLogical(cw, 6).AsByte() & mask;
        Vector512<short> p = Avx512BW.MultiplyAddAdjacent(c0, a0) + Avx512BW.MultiplyAddAdjacent(c1, a1)
            + Avx512BW.MultiplyAddAdjacent(c2, a2) + Avx512BW.MultiplyAddAdjacent(c3, a3);
        Vector512<int> dot = Avx512BW.MultiplyAddAdjacent(p, ones) - correction;
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(dot), Vector512.Create(scale), acc);
    }

    /// <summary>The row-scaled path: y[t, r] = (sum_k code[r, k] q[t, k] - sum_k q[t, k]) d[t] s[r] s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void RunRowScaledAvx512(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd)
    {
        int blocks = w.Blocks, cols = w.Cols;
        int* dots = stackalloc int[TernaryMatrix.TileRows * TokenGroup];
        int t = 0;
        for (; t + TokenGroup <= x.Tokens; t += TokenGroup)
        {
            // The group's activations (4 x cols bytes) stay in L1 while the thread's tiles stream past them.
            sbyte* q = x.Q + (long)t * cols;
            for (int tile = tileStart; tile < tileEnd; tile++)
            {
                byte* tileCodes = w.Codes + (long)tile * blocks * TernaryMatrix.TileRows * TernaryMatrix.BlockBytes;
                for (int i = 0; i < TernaryMatrix.TileRows; i++)
                {
                    FourTokensOneRow(tileCodes + i * TernaryMatrix.BlockBytes, blocks, q, cols, dots + i * TokenGroup);
                }

                for (int g = 0; g < TokenGroup; g++)
                {
                    StoreRowScaled(w, x, t + g, y + (long)(t + g) * yStride, tile, dots + g, TokenGroup);
                }
            }
        }

        for (; t < x.Tokens; t++)
        {
            sbyte* q = x.Q + (long)t * cols;
            for (int tile = tileStart; tile < tileEnd; tile++)
            {
                OneTokenFourRows(w.Codes + (long)tile * blocks * TernaryMatrix.TileRows * TernaryMatrix.BlockBytes, blocks, q, dots);
                StoreRowScaled(w, x, t, y + (long)t * yStride, tile, dots, 1);
            }
        }
    }

    /// <summary>dots[g] = sum_k code[k] q[g, k] for one row (its blocks 256 bytes apart) and 4 tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourTokensOneRow(byte* rowCodes, int blocks, sbyte* q, int cols, int* dots)
    {
        Vector512<short> ones = Vector512.Create((short)1);
        Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int b0 = 0; b0 < blocks; b0 += BlocksPerFlush)
        {
            int end = Math.Min(blocks, b0 + BlocksPerFlush);
            Vector512<short> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int b = b0; b < end; b++)
            {
                Unpack(Vector512.Load(rowCodes + (long)b * TernaryMatrix.TileRows * TernaryMatrix.BlockBytes), out Vector512<byte> f0, out Vector512<byte> f1, out Vector512<byte> f2, out Vector512<byte> f3);
                sbyte* qb = q + b * 256;
                a0 += BlockDot(f0, f1, f2, f3, qb);
                a1 += BlockDot(f0, f1, f2, f3, qb + cols);
                a2 += BlockDot(f0, f1, f2, f3, qb + 2 * cols);
                a3 += BlockDot(f0, f1, f2, f3, qb + 3 * cols);
            }

            s0 += Avx512BW.MultiplyAddAdjacent(a0, ones);
            s1 += Avx512BW.MultiplyAddAdjacent(a1, ones);
            s2 += Avx512BW.MultiplyAddAdjacent(a2, ones);
            s3 += Avx512BW.MultiplyAddAdjacent(a3, ones);
        }

        dots[0] = Vector512.Sum(s0);
        dots[1] = Vector512.Sum(s1);
        dots[2] = Vector512.Sum(s2);
        dots[3] = Vector512.Sum(s3);
    }

    /// <summary>dots[i] = sum_k code[i, k] q[k] for the 4 rows of a tile and one token (the decode GEMV).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneTokenFourRows(byte* tileCodes, int blocks, sbyte* q, int* dots)
    {
        Vector512<short> ones = Vector512.Create((short)1);
        Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int b0 = 0; b0 < blocks; b0 += BlocksPerFlush)
        {
            int end = Math.Min(blocks, b0 + BlocksPerFlush);
            Vector512<short> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int b = b0; b < end; b++)
            {
                byte* codes = tileCodes + b * (TernaryMatrix.TileRows * TernaryMatrix.BlockBytes);
                Sse.Prefetch0(codes + PrefetchDistance);
                Sse.Prefetch0(codes + PrefetchDistance + 64);
                Sse.Prefetch0(codes + PrefetchDistance + 128);
                Sse.Prefetch0(codes + PrefetchDistance + 192);
                sbyte* qb = q + b * 256;
                Vector512<sbyte> x0 = Vector512.Load(qb), x1 = Vector512.Load(qb + 64), x2 = Vector512.Load(qb + 128), x3 = Vector512.Load(qb + 192);
                a0 += RowDot(Vector512.Load(codes), x0, x1, x2, x3);
                a1 += RowDot(Vector512.Load(codes + 64), x0, x1, x2, x3);
                a2 += RowDot(Vector512.Load(codes + 128), x0, x1, x2, x3);
                a3 += RowDot(Vector512.Load(codes + 192), x0, x1, x2, x3);
            }

            s0 += Avx512BW.MultiplyAddAdjacent(a0, ones);
            s1 += Avx512BW.MultiplyAddAdjacent(a1, ones);
            s2 += Avx512BW.MultiplyAddAdjacent(a2, ones);
            s3 += Avx512BW.MultiplyAddAdjacent(a3, ones);
        }

        dots[0] = Vector512.Sum(s0);
        dots[1] = Vector512.Sum(s1);
        dots[2] = Vector512.Sum(s2);
        dots[3] = Vector512.Sum(s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> BlockDot(Vector512<byte> f0, Vector512<byte> f1, Vector512<byte> f2, Vector512<byte> f3, sbyte* qb) =>
        (Avx512BW.MultiplyAddAdjacent(f0, Vector512.Load(qb)) + Avx512BW.MultiplyAddAdjacent(f1, Vector512.Load(qb + 64)))
        + (Avx512BW.MultiplyAddAdjacent(f2, Vector512.Load(qb + 128)) + Avx512BW.MultiplyAddAdjacent(f3, Vector512.Load(qb + 192)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> RowDot(Vector512<byte> codes, Vector512<sbyte> x0, Vector512<sbyte> x1, Vector512<sbyte> x2, Vector512<sbyte> x3)
    {
        Unpack(codes, out Vector512<byte> f0, out Vector512<byte> f1, out Vector512<byte> f2, out Vector512<byte> f3);
        return (Avx512BW.MultiplyAddAdjacent(f0, x0) + Avx512BW.MultiplyAddAdjacent(f1, x1))
            + (Avx512BW.MultiplyAddAdjacent(f2, x2) + Avx512BW.MultiplyAddAdjacent(f3, x3));
    }

    /// <summary>The four 2-bit fields of 64 code bytes, each in the low bits of its byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unpack(Vector512<byte> c, out Vector512<byte> f0, out Vector512<byte> f1, out Vector512<byte> f2, out Vector512<byte> f3)
    {
        if (Gfni.V512.IsSupported)
        {
            // One affine bit-matrix per field moves bits 2l, 2l+1 to bits 0, 1 (GF(2) matrix rows: output bit i is
            // the parity of the input masked by matrix byte 7 - i).
            f0 = Gfni.V512.GaloisFieldAffineTransform(c, Vector512.Create(0x0102_0000_0000_0000UL).AsByte(), 0);
            f1 = Gfni.V512.GaloisFieldAffineTransform(c, Vector512.Create(0x0408_0000_0000_0000UL).AsByte(), 0);
            f2 = Gfni.V512.GaloisFieldAffineTransform(c, Vector512.Create(0x1020_0000_0000_0000UL).AsByte(), 0);
            f3 = Gfni.V512.GaloisFieldAffineTransform(c, Vector512.Create(0x4080_0000_0000_0000UL).AsByte(), 0);
            return;
        }

        Vector512<byte> mask = Vector512.Create((byte)3);
        Vector512<ushort> cw = c.AsUInt16();
        f0 = c & mask;
        f1 = Avx512BW.ShiftRightLogical(cw, 2).AsByte() & mask;
        f2 = Avx512BW.ShiftRightLogical(cw, 4).AsByte() & mask;
        f3 = Avx512BW.ShiftRightLogical(cw, 6).AsByte() & mask;
    }

    /// <summary>Scales the integer dots of one tile's rows for token t (dots of row i at dots[i * dotStride]).</summary>
    private static void StoreRowScaled(TernaryMatrix w, QuantizedActivations x, int t, float* yRow, int tile, int* dots, int dotStride)
    {
        // Codes are w + 1, so sum(code * q) - sum(q) = sum(w * q).
        int sum = x.TokenSum[t];
        float scale = x.D[t * x.Blocks] * w.TensorScale;
        int row = tile * TernaryMatrix.TileRows;
        float* rowScales = w.RowScales + row;
        int count = Math.Min(TernaryMatrix.TileRows, w.Rows - row);
        for (int i = 0; i < count; i++)
        {
            yRow[row + i] = (dots[i * dotStride] - sum) * (scale * rowScales[i]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void RunAvx2(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd)
    {
        int blocks = w.Blocks;
        Vector256<byte> mask = Vector256.Create((byte)3);
        Vector256<short> ones = Vector256.Create((short)1);
        float* rowSums = stackalloc float[TernaryMatrix.TileRows];
        for (int tile = tileStart; tile < tileEnd; tile++)
        {
            byte* tileCodes = w.Codes + (long)tile * blocks * TernaryMatrix.TileRows * TernaryMatrix.BlockBytes;
            float* tileScales = w.Scales + (long)tile * blocks * TernaryMatrix.TileRows;
            for (int t = 0; t < x.Tokens; t++)
            {
                sbyte* q = x.Q + (long)t * w.Cols;
                float* d = x.D + t * blocks;
                int* sums = x.Sum + t * blocks;
                for (int i = 0; i < TernaryMatrix.TileRows; i++)
                {
                    Vector256<float> acc = default;
                    for (int b = 0; b < blocks; b++)
                    {
                        byte* codes = tileCodes + (b * TernaryMatrix.TileRows + i) * TernaryMatrix.BlockBytes;
                        sbyte* qb = q + b * 256;
                        Vector256<short> p = default;
                        for (int half = 0; half < 2; half++)
                        {
                            Vector256<byte> c = Vector256.Load(codes + half * 32);
                            Vector256<ushort> cw = c.AsUInt16();
                            p += Avx2.MultiplyAddAdjacent(c & mask, Vector256.Load(qb + half * 32))
                                + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(cw, 2).AsByte() & mask, Vector256.Load(qb + 64 + half * 32))
                                + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(cw, 4).AsByte() & mask, Vector256.Load(qb + 128 + half * 32))
                                + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(cw, 6).AsByte() & mask, Vector256.Load(qb + 192 + half * 32));
                        }

                        Vector256<int> dot = Avx2.MultiplyAddAdjacent(p, ones) - Vector256.CreateScalar(sums[b]);
                        acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), Vector256.Create(d[b] * tileScales[b * TernaryMatrix.TileRows + i]), acc);
                    }

                    rowSums[i] = Vector256.Sum(acc);
                }

                Store(w, y + (long)t * yStride, tile, rowSums[0], rowSums[1], rowSums[2], rowSums[3]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(TernaryMatrix w, float* yRow, int tile, float r0, float r1, float r2, float r3)
    {
        int row = tile * TernaryMatrix.TileRows;
        float s = w.TensorScale;
        if (row + 3 < w.Rows)
        {
            yRow[row] = r0 * s;
            yRow[row + 1] = r1 * s;
            yRow[row + 2] = r2 * s;
            yRow[row + 3] = r3 * s;
            return;
        }

        Span<float> r = [r0, r1, r2, r3];
        for (int i = 0; row + i < w.Rows; i++)
        {
            yRow[row + i] = r[i] * s;
        }
    }
}
