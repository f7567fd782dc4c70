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
}
