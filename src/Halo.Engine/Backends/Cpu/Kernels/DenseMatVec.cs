using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Core.Formats;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>y [rows] = M x for a dense F16/F32/BF16 <see cref="DenseMatrix"/> (the LM head), over a row range.</summary>
public static unsafe class DenseMatVec
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(DenseMatrix m, float* x, float* y, int rowStart, int rowEnd)
    {
        int cols = m.Cols;
        if (m.Type == GgmlType.F16 && Avx512F.IsSupported && cols % 16 == 0)
        {
            for (int r = rowStart; r < rowEnd; r++)
            {
                ushort* row = (ushort*)m.Data + (long)r * cols;
                Sse.Prefetch0(row + 4096);
                Vector512<float> acc0 = default, acc1 = default;
                int i = 0;
                for (; i + 32 <= cols; i += 32)
                {
                    Sse.Prefetch0((byte*)(row + i) + 2048);
                    Vector512<uint> h0 = Avx512F.ConvertToVector512UInt32(Vector256.Load(row + i));
                    Vector512<uint> h1 = Avx512F.ConvertToVector512UInt32(Vector256.Load(row + i + 16));
                    acc0 = Avx512F.FusedMultiplyAdd(HalfBits.ToSingle(h0), Vector512.Load(x + i), acc0);
                    acc1 = Avx512F.FusedMultiplyAdd(HalfBits.ToSingle(h1), Vector512.Load(x + i + 16), acc1);
                }

                for (; i < cols; i += 16)
                {
                    Vector512<uint> h0 = Avx512F.ConvertToVector512UInt32(Vector256.Load(row + i));
                    acc0 = Avx512F.FusedMultiplyAdd(HalfBits.ToSingle(h0), Vector512.Load(x + i), acc0);
                }

                y[r] = Vector512.Sum(acc0 + acc1);
            }

            return;
        }

        for (int r = rowStart; r < rowEnd; r++)
        {
            float acc = 0f;
            long start = (long)r * cols;
            switch (m.Type)
            {
                case GgmlType.F32:
                    acc = VectorOps.Dot((float*)m.Data + start, x, cols);
                    break;
                case GgmlType.F16:
                    for (int i = 0; i < cols; i++)
                    {
                        acc += HalfBits.ToSingle(((ushort*)m.Data)[start + i]) * x[i];
                    }

                    break;
                default:
                    for (int i = 0; i < cols; i++)
                    {
                        acc += HalfBits.BFloat16ToSingle(((ushort*)m.Data)[start + i]) * x[i];
                    }

                    break;
            }

            y[r] = acc;
        }
    }
}
