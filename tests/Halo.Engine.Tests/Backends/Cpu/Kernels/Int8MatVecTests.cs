using System.Runtime.InteropServices;
using Halo.Core.Formats;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

[Collection(KernelSwitchesCollection.Name)]
public sealed unsafe class Int8MatVecTests
{
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void Run_RandomF16Matrix_MatchesExactIntegerDot(bool vnni, bool avx2)
    {
        if ((vnni && !System.Runtime.Intrinsics.X86.AvxVnni.IsSupported) || (avx2 && !System.Runtime.Intrinsics.X86.Avx2.IsSupported))
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
            (bool savedVnni, bool savedAvx2) = (Int8MatVec.UseAvxVnni, Int8MatVec.UseAvx2);
            (Int8MatVec.UseAvxVnni, Int8MatVec.UseAvx2) = (vnni, avx2);
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
                (Int8MatVec.UseAvxVnni, Int8MatVec.UseAvx2) = (savedVnni, savedAvx2);
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

    /// <summary>
    /// Eight tokens in one pass over the rows give exactly what eight single-token passes give, in two row ranges (as
    /// two workers take them): 151 rows cover full and partial 64-row calls of the zmm kernel and an odd last row.
    /// </summary>
    [Theory]
    [InlineData(37, false)]
    [InlineData(151, false)]
    [InlineData(37, true)]
    [InlineData(151, true)]
    public void RunBatch_EightTokens_EqualsOneTokenAtATime(int rows, bool vnni512)
    {
        if (vnni512 && !Vnni512Kernels.CpuSupports)
        {
            return;
        }

        const int cols = 384, tokens = Int8MatVec.BatchTokens;
        var rng = new Random(4);
        var halves = new Half[rows * cols];
        for (int i = 0; i < halves.Length; i++)
        {
            halves[i] = (Half)(rng.NextDouble() * 2 - 1);
        }

        var q = new sbyte[tokens * cols];
        var u = new byte[tokens * cols];
        for (int i = 0; i < q.Length; i++)
        {
            q[i] = (sbyte)rng.Next(-127, 128);
            u[i] = (byte)(q[i] + 128);
        }

        float[] d = [0.5f, 0.25f, 1.5f, 0.125f, 2f, 0.75f, 1f, 0.375f];
        var batched = new float[tokens * rows];
        var single = new float[tokens * rows];
        fixed (Half* p = halves)
        fixed (sbyte* pq = q)
        fixed (byte* pu = u)
        fixed (float* pd = d, pb = batched, ps = single)
        {
            var view = new TensorView("w", GgmlType.F16, [cols, rows], (byte*)p, halves.Length * 2);
            using Int8Matrix m = Int8Matrix.Quantize(DenseMatrix.FromTensor("f", view, cols), rows);
            float** targets = stackalloc float*[tokens];
            for (int k = 0; k < tokens; k++)
            {
                targets[k] = pb + k * rows;
                Int8MatVec.Run(m, pu + k * cols, pq + k * cols, d[k], ps + k * rows, 0, rows);
            }

            bool saved = Int8MatVec.UseVnni512;
            Int8MatVec.UseVnni512 = vnni512;
            try
            {
                int split = Math.Min(70, rows);
                Int8MatVec.RunBatch(m, pu, pq, pd, targets, tokens, 0, split);
                Int8MatVec.RunBatch(m, pu, pq, pd, targets, tokens, split, rows);
            }
            finally
            {
                Int8MatVec.UseVnni512 = saved;
            }
        }

        Assert.Equal(single, batched);
    }
}
