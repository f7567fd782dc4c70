using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// y [rows] = M x for an <see cref="Int8Matrix"/> M and x quantized per token to int8 (x ~ q * d), over a row
/// range. AVX-VNNI's vpdpbusd multiplies unsigned by signed bytes, so x goes in shifted to u = q + 128 and the
/// shift is taken back with the row sums: sum(u * w) - 128 * sum(w) = sum(q * w), exact in int32.
/// </summary>
public static unsafe class Int8MatVec
{
    public static bool UseAvxVnni { get; set; } = AvxVnni.IsSupported;

    public static bool UseAvx2 { get; set; } = Avx2.IsSupported;

    /// <summary>Tokens whose logits one pass over the head's rows computes (<see cref="RunBatch"/>).</summary>
    public const int BatchTokens = 4;

    /// <summary><paramref name="u"/> holds q + 128 as bytes [cols]; <paramref name="q"/> the signed q [cols].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(Int8Matrix m, byte* u, sbyte* q, float d, float* y, int rowStart, int rowEnd)
    {
        int cols = m.Cols;
        if (UseAvxVnni && cols % 64 == 0)
        {
            for (int r = rowStart; r < rowEnd; r++)
            {
                sbyte* w = m.Q + (long)r * cols;
                Sse.Prefetch0(w + 4096);
                Vector256<int> acc0 = default, acc1 = default;
                for (int i = 0; i < cols; i += 64)
                {
                    Sse.Prefetch0(w + i + 1024);
                    acc0 = AvxVnni.MultiplyWideningAndAdd(acc0, Vector256.Load(u + i), Vector256.Load(w + i));
                    acc1 = AvxVnni.MultiplyWideningAndAdd(acc1, Vector256.Load(u + i + 32), Vector256.Load(w + i + 32));
                }

                int dot = Vector256.Sum(acc0 + acc1) - 128 * m.Sums[r];
                y[r] = dot * (m.Scales[r] * d);
            }

            return;
        }

        if (UseAvx2 && cols % 32 == 0)
        {
            // vpmaddubsw takes |w| (<= 127, unsigned) against q carrying w's sign: pairs stay below 2 * 127 * 128.
            Vector256<short> ones = Vector256.Create((short)1);
            for (int r = rowStart; r < rowEnd; r++)
            {
                sbyte* w = m.Q + (long)r * cols;
                Sse.Prefetch0(w + 4096);
                Vector256<int> acc = default;
                for (int i = 0; i < cols; i += 32)
                {
                    Vector256<sbyte> wv = Vector256.Load(w + i);
                    Vector256<short> p = Avx2.MultiplyAddAdjacent(Avx2.Abs(wv), Avx2.Sign(Vector256.Load(q + i), wv));
                    acc += Avx2.MultiplyAddAdjacent(p, ones);
                }

                y[r] = Vector256.Sum(acc) * (m.Scales[r] * d);
            }

            return;
        }

        for (int r = rowStart; r < rowEnd; r++)
        {
            sbyte* w = m.Q + (long)r * cols;
            int dot = 0;
            for (int i = 0; i < cols; i++)
            {
                dot += w[i] * q[i];
            }

            y[r] = dot * (m.Scales[r] * d);
        }
    }

    /// <summary>
    /// The same for <paramref name="n"/> &lt;= <see cref="BatchTokens"/> tokens at once (batched decode), so the head's
    /// rows are read from memory once per step instead of once per sequence: token k's u + 128 bytes at
    /// u + k * cols, its scale d[k], its logits y[k]. AVX-VNNI; elsewhere one token at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunBatch(Int8Matrix m, byte* u, sbyte* q, float* d, float** y, int n, int rowStart, int rowEnd)
    {
        int cols = m.Cols;
        if (!UseAvxVnni || cols % 64 != 0 || n != BatchTokens)
        {
            for (int k = 0; k < n; k++)
            {
                Run(m, u + (long)k * cols, q + (long)k * cols, d[k], y[k], rowStart, rowEnd);
            }

            return;
        }

        byte* u0 = u, u1 = u + cols, u2 = u + 2 * cols, u3 = u + 3 * cols;
        for (int r = rowStart; r < rowEnd; r++)
        {
            sbyte* w = m.Q + (long)r * cols;
            Sse.Prefetch0(w + 4096);
            // Two chains per token (even and odd 32-column halves) hide the multiply-add latency.
            Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector256<int> b0 = default, b1 = default, b2 = default, b3 = default;
            for (int i = 0; i < cols; i += 64)
            {
                Sse.Prefetch0(w + i + 1024);
                Vector256<sbyte> lo = Vector256.Load(w + i), hi = Vector256.Load(w + i + 32);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, Vector256.Load(u0 + i), lo);
                b0 = AvxVnni.MultiplyWideningAndAdd(b0, Vector256.Load(u0 + i + 32), hi);
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, Vector256.Load(u1 + i), lo);
                b1 = AvxVnni.MultiplyWideningAndAdd(b1, Vector256.Load(u1 + i + 32), hi);
                a2 = AvxVnni.MultiplyWideningAndAdd(a2, Vector256.Load(u2 + i), lo);
                b2 = AvxVnni.MultiplyWideningAndAdd(b2, Vector256.Load(u2 + i + 32), hi);
                a3 = AvxVnni.MultiplyWideningAndAdd(a3, Vector256.Load(u3 + i), lo);
                b3 = AvxVnni.MultiplyWideningAndAdd(b3, Vector256.Load(u3 + i + 32), hi);
            }

            int shift = 128 * m.Sums[r];
            float scale = m.Scales[r];
            y[0][r] = (Vector256.Sum(a0 + b0) - shift) * (scale * d[0]);
            y[1][r] = (Vector256.Sum(a1 + b1) - shift) * (scale * d[1]);
            y[2][r] = (Vector256.Sum(a2 + b2) - shift) * (scale * d[2]);
            y[3][r] = (Vector256.Sum(a3 + b3) - shift) * (scale * d[3]);
        }
    }
}
