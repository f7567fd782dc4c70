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
/// float, as llama.cpp's TQ2_0 x Q8_K dot product does. Paths: AVX-512BW, AVX2, portable Vector128.
/// When every row has one scale and every token one activation scale, the row-scaled paths (next file) apply.
/// </summary>
public static unsafe partial class TernaryMatMul
{
    private const int PrefetchDistance = 8192;


    public static bool UseAvx512 { get; set; } = Avx512BW.IsSupported;

    public static bool UseAvx2 { get; set; } = Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Computes tiles [tileStart, tileEnd) for every token; y has row stride <paramref name="yStride"/>.</summary>
    public static void Run(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd)
    {
        bool rowScaled = w.RowScales != null && x.Scaling == ActivationScaling.PerToken;
        if (rowScaled && UseAvx512)
        {
            RunRowScaledAvx512(w, x, y, yStride, tileStart, tileEnd);
        }
        else if (rowScaled && UseAvx2)
        {
            RunRowScaledAvx2(w, x, y, yStride, tileStart, tileEnd);
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
            RunPortable(w, x, y, yStride, tileStart, tileEnd);
        }
    }

    /// <summary>
    /// The portable path: Vector128 operations, which the JIT maps to SSE2 or NEON, with 16-bit products
    /// widened to 32 bits per field; any scaling, as many tokens as given.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void RunPortable(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd)
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
                        int isum = PortableBlockDot(w.Codes + index * TernaryMatrix.BlockBytes, q + b * 256) - x.Sum[t * blocks + b];
                        acc += isum * (x.D[t * blocks + b] * w.Scales[index]);
                    }

                    y[(long)t * yStride + row] = acc * w.TensorScale;
                }
            }
        }
    }

    /// <summary>sum code * q over one 256-block (64 code bytes, field l of byte j against q[l * 64 + j]).</summary>
    private static int PortableBlockDot(byte* codes, sbyte* qb)
    {
        Vector128<byte> mask = Vector128.Create((byte)3);
        Vector128<int> dot = default;
        for (int m = 0; m < 64; m += 16)
        {
            Vector128<byte> c = Vector128.Load(codes + m);
            for (int l = 0; l < 4; l++)
            {
                (Vector128<ushort> fLo, Vector128<ushort> fHi) = Vector128.Widen(Vector128.ShiftRightLogical(c, 2 * l) & mask);
                (Vector128<short> aLo, Vector128<short> aHi) = Vector128.Widen(Vector128.Load(qb + l * 64 + m));
                // |code * q| <= 256, so the sum of two products fits 16 bits.
                (Vector128<int> pLo, Vector128<int> pHi) = Vector128.Widen(fLo.AsInt16() * aLo + fHi.AsInt16() * aHi);
                dot += pLo + pHi;
            }
        }

        return Vector128.Sum(dot);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void RunAvx512(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd)
    {
        int blocks = w.Blocks;
        Vector512<short> ones = Vector512.Create((short)1);
        for (int tile = tileStart; tile < tileEnd; tile++)
        {
            byte* tileCodes = w.Codes + (long)tile * blocks * TernaryMatrix.TileBlockBytes;
            float* tileScales = w.Scales + (long)tile * blocks * TernaryMatrix.TileRows;
            for (int t = 0; t < x.Tokens; t++)
            {
                sbyte* q = x.Q + (long)t * w.Cols;
                float* d = x.D + t * blocks;
                int* sums = x.Sum + t * blocks;
                Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
                for (int b = 0; b < blocks; b++)
                {
                    byte* codes = tileCodes + b * TernaryMatrix.TileBlockBytes;
                    PrefetchTileBlock(codes);
                    sbyte* qb = q + b * 256;
                    Vector512<sbyte> a0 = Vector512.Load(qb), a1 = Vector512.Load(qb + 64), a2 = Vector512.Load(qb + 128), a3 = Vector512.Load(qb + 192);
                    Vector512<int> correction = Vector512.CreateScalar(sums[b]);
                    float db = d[b];
                    float* s = tileScales + b * TernaryMatrix.TileRows;
                    acc0 = Block(codes, a0, a1, a2, a3, ones, correction, db * s[0], acc0);
                    acc1 = Block(codes + 64, a0, a1, a2, a3, ones, correction, db * s[1], acc1);
                    acc2 = Block(codes + 128, a0, a1, a2, a3, ones, correction, db * s[2], acc2);
                    acc3 = Block(codes + 192, a0, a1, a2, a3, ones, correction, db * s[3], acc3);
                }

                Store(w, y + (long)t * yStride, tile, Vector512.Sum(acc0), Vector512.Sum(acc1), Vector512.Sum(acc2), Vector512.Sum(acc3));
            }
        }
    }

    /// <summary>Asks for the 4 rows' block <see cref="PrefetchDistance"/> bytes ahead of the one being read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTileBlock(byte* codes)
    {
        Sse.Prefetch0(codes + PrefetchDistance);
        Sse.Prefetch0(codes + PrefetchDistance + 64);
        Sse.Prefetch0(codes + PrefetchDistance + 128);
        Sse.Prefetch0(codes + PrefetchDistance + 192);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Block(byte* codes, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3,
        Vector512<short> ones, Vector512<int> correction, float scale, Vector512<float> acc)
    {
        Unpack(Vector512.Load(codes), out Vector512<byte> c0, out Vector512<byte> c1, out Vector512<byte> c2, out Vector512<byte> c3);
        Vector512<short> p = Avx512BW.MultiplyAddAdjacent(c0, a0) + Avx512BW.MultiplyAddAdjacent(c1, a1)
            + Avx512BW.MultiplyAddAdjacent(c2, a2) + Avx512BW.MultiplyAddAdjacent(c3, a3);
        Vector512<int> dot = Avx512BW.MultiplyAddAdjacent(p, ones) - correction;
        return Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(dot), Vector512.Create(scale), acc);
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
            byte* tileCodes = w.Codes + (long)tile * blocks * TernaryMatrix.TileBlockBytes;
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
