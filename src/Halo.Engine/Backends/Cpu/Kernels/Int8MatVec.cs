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

    /// <summary>The 8-token pass runs <see cref="Vnni512Kernels"/>'s zmm kernel where they can be used (tests turn it off).</summary>
    public static bool UseVnni512 { get; set; } = Vnni512Kernels.Usable;

    // Rows per call of the zmm kernel: their dots (8 ints each) sit on the stack until they are scaled.
    private const int Vnni512Rows = 64;

    /// <summary>Tokens whose logits one pass over the head's rows computes (<see cref="RunBatch"/>).</summary>
    public const int BatchTokens = 8;

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
    /// The same for <paramref name="n"/> tokens at once (batched decode), so the head's rows are read from memory
    /// once per step instead of once per sequence: token k's q + 128 bytes at u + k * cols, its scale d[k], its
    /// logits y[k]. AVX-VNNI reads <see cref="BatchTokens"/> tokens per pass; elsewhere one token at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunBatch(Int8Matrix m, byte* u, sbyte* q, float* d, float** y, int n, int rowStart, int rowEnd)
    {
        int cols = m.Cols;
        var vnni512 = UseVnni512 ? Vnni512Kernels.Int8HeadEightTokensTwoRows : null;
        if (vnni512 != null && cols % 64 == 0 && n == BatchTokens)
        {
            RunBatchVnni512(vnni512, m, u, q, d, y, rowStart, rowEnd);
            return;
        }

        if (!UseAvxVnni || cols % 32 != 0 || n != BatchTokens)
        {
            for (int k = 0; k < n; k++)
            {
                Run(m, u + (long)k * cols, q + (long)k * cols, d[k], y[k], rowStart, rowEnd);
            }

            return;
        }

        // One accumulator per token: 8 independent multiply-add chains, and with the weights 9 of the 16
        // registers VEX-encoded AVX-VNNI can name.
        for (int r = rowStart; r < rowEnd; r++)
        {
            sbyte* w = m.Q + (long)r * cols;
            Sse.Prefetch0(w + 4096);
            Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (int i = 0; i < cols; i += 32)
            {
                Vector256<sbyte> wv = Vector256.Load(w + i);
                byte* ui = u + i;
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, Vector256.Load(ui), wv);
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, Vector256.Load(ui + cols), wv);
                a2 = AvxVnni.MultiplyWideningAndAdd(a2, Vector256.Load(ui + 2 * cols), wv);
                a3 = AvxVnni.MultiplyWideningAndAdd(a3, Vector256.Load(ui + 3 * cols), wv);
                a4 = AvxVnni.MultiplyWideningAndAdd(a4, Vector256.Load(ui + 4 * cols), wv);
                a5 = AvxVnni.MultiplyWideningAndAdd(a5, Vector256.Load(ui + 5 * cols), wv);
                a6 = AvxVnni.MultiplyWideningAndAdd(a6, Vector256.Load(ui + 6 * cols), wv);
                a7 = AvxVnni.MultiplyWideningAndAdd(a7, Vector256.Load(ui + 7 * cols), wv);
            }

            int shift = 128 * m.Sums[r];
            float scale = m.Scales[r];
            y[0][r] = (Vector256.Sum(a0) - shift) * (scale * d[0]);
            y[1][r] = (Vector256.Sum(a1) - shift) * (scale * d[1]);
            y[2][r] = (Vector256.Sum(a2) - shift) * (scale * d[2]);
            y[3][r] = (Vector256.Sum(a3) - shift) * (scale * d[3]);
            y[4][r] = (Vector256.Sum(a4) - shift) * (scale * d[4]);
            y[5][r] = (Vector256.Sum(a5) - shift) * (scale * d[5]);
            y[6][r] = (Vector256.Sum(a6) - shift) * (scale * d[6]);
            y[7][r] = (Vector256.Sum(a7) - shift) * (scale * d[7]);
        }
    }

    /// <summary>
    /// <see cref="RunBatch"/> by the zmm kernel, <see cref="Vnni512Rows"/> rows (an even number) per call, each row's 8
    /// dots then shifted back and scaled in one vector; an odd last row goes one token at a time.
    /// </summary>
    private static void RunBatchVnni512(delegate* unmanaged[SuppressGCTransition]<sbyte*, long, byte*, long, int*, void> kernel,
        Int8Matrix m, byte* u, sbyte* q, float* d, float** y, int rowStart, int rowEnd)
    {
        int* dots = stackalloc int[Vnni512Rows * BatchTokens];
        Vector256<float> tokenScales = Vector256.Load(d);
        int pairsEnd = rowStart + (rowEnd - rowStart) / 2 * 2;
        for (int r0 = rowStart; r0 < pairsEnd; r0 += Vnni512Rows)
        {
            int rows = Math.Min(Vnni512Rows, pairsEnd - r0);
            kernel(m.Q + (long)r0 * m.Cols, rows / 2, u, m.Cols, dots);
            for (int i = 0; i < rows; i++)
            {
                int r = r0 + i;
                Vector256<int> dot = Vector256.Load(dots + i * BatchTokens) - Vector256.Create(128 * m.Sums[r]);
                Vector256<float> logits = Vector256.ConvertToSingle(dot) * (tokenScales * m.Scales[r]);
                for (int k = 0; k < BatchTokens; k++)
                {
                    y[k][r] = logits.GetElement(k);
                }
            }
        }

        if (pairsEnd == rowEnd)
        {
            return;
        }

        for (int k = 0; k < BatchTokens; k++)
        {
            Run(m, u + (long)k * m.Cols, q + (long)k * m.Cols, d[k], y[k], pairsEnd, rowEnd);
        }
    }
}
