using System.Runtime.InteropServices;
using Halo.Core.Formats;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

[Collection(KernelSwitchesCollection.Name)]
public sealed unsafe class Int8MatVecTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Run_RandomF16Matrix_MatchesExactIntegerDot(bool vnni)
    {
        if (vnni && !System.Runtime.Intrinsics.X86.AvxVnni.IsSupported)
        {
            return;
        }

        const int rows = 50, cols = 320;
        var rng = new Random(2);
        var halves = new Half[rows * cols];
        for (int i = 0; i < halves.Length; i++)
        {
            halves[i] = (Half)(rng.NextDouble() * 2 - 1);
        }

        fixed (Half* p = halves)
        {
            var view = new TensorView("w", GgmlType.F16, [cols, rows], (byte*)p, halves.Length * 2);
            DenseMatrix dense = DenseMatrix.FromTensor("f", view, cols);
            using Int8Matrix m = Int8Matrix.Quantize(dense, rows);
            var q = new sbyte[cols];
            var u = new byte[cols];
            for (int i = 0; i < cols; i++)
            {
                q[i] = (sbyte)rng.Next(-127, 128);
                u[i] = (byte)(q[i] + 128);
            }

            var y = new float[rows];
            bool saved = Int8MatVec.UseAvxVnni;
            Int8MatVec.UseAvxVnni = vnni;
            try
            {
                fixed (sbyte* pq = q)
                fixed (byte* pu = u)
                fixed (float* py = y)
                {
                    Int8MatVec.Run(m, pu, pq, 0.5f, py, 0, rows);
                }
            }
            finally
            {
                Int8MatVec.UseAvxVnni = saved;
            }

            for (int r = 0; r < rows; r++)
            {
                long dot = 0;
                float amax = 0;
                for (int i = 0; i < cols; i++)
                {
                    amax = Math.Max(amax, Math.Abs((float)halves[r * cols + i]));
                }

                for (int i = 0; i < cols; i++)
                {
                    dot += (int)MathF.Round((float)halves[r * cols + i] * (127f / amax)) * q[i];
                }

                Assert.Equal(dot * (amax / 127f * 0.5f), y[r], 3);
            }
        }
    }
}
