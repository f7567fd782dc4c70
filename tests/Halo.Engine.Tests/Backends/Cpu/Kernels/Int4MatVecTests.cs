using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Tests.Weights;
using Halo.Engine.Weights;
using static Halo.Engine.Tests.Backends.Cpu.Kernels.HeadKernelPaths;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

public sealed unsafe class Int4MatVecTests
{
    /// <summary>
    /// Each path against the exact integer dot of the stored codes, group scales and input: the kernels sum in
    /// int32/int64 and round once, so only the final float multiply differs (relative 1e-6).
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes), MemberType = typeof(HeadKernelPaths))]
    public void Run_RandomMatrix_MatchesExactIntegerDot(KernelPath path, int rows, int cols, int groupSize)
    {
        if (!Supported(path))
        {
            return;
        }

        using var source = new TestMatrix(rows, cols, seed: rows * 31 + cols);
        using Int4Matrix m = Int4Matrix.Quantize(source.Dense, rows, groupSize);
        var rng = new Random(cols);
        var q = new sbyte[m.PaddedCols];
        for (int i = 0; i < cols; i++)
        {
            q[i] = (sbyte)rng.Next(-127, 128);
        }

        var sums = new short[m.ScaleStride];
        var y = new float[rows + 1];
        y[rows] = 12345f;
        const float d = 0.03f;
        fixed (sbyte* pq = q)
        fixed (short* ps = sums)
        fixed (float* py = y)
        {
            Int4MatVec.GroupSums(m, pq, ps);
            switch (path)
            {
                case KernelPath.Avx512:
                    Int4MatVec.RunAvx512(m, pq, ps, d, py, 0, m.Tiles);
                    break;
                case KernelPath.Avx2:
                    Int4MatVec.RunAvx2(m, pq, ps, d, py, 0, m.Tiles);
                    break;
                default:
                    Int4MatVec.RunScalar(m, pq, ps, d, py, 0, m.Tiles);
                    break;
            }
        }

        for (int r = 0; r < rows; r++)
        {
            long dot = 0;
            for (int c = 0; c < cols; c++)
            {
                dot += (long)m.Code(r, c) * m.GroupScale(r, c / groupSize) * q[c];
            }

            double expected = dot * ((double)m.RowScale(r) * d);
            Assert.True(Math.Abs(y[r] - expected) <= 1e-5 * Math.Abs(expected) + 1e-12, $"row {r}: {y[r]} vs {expected}");
        }

        Assert.Equal(12345f, y[rows]); // rows of the padded last tile are not written
    }

    [Fact]
    public void Run_TileRange_WritesOnlyThoseRows()
    {
        using var source = new TestMatrix(20, 256, seed: 3);
        using Int4Matrix m = Int4Matrix.Quantize(source.Dense, 20, 32);
        var q = new sbyte[m.PaddedCols];
        q.AsSpan().Fill(5);
        var sums = new short[m.ScaleStride];
        var y = new float[20];
        y.AsSpan().Fill(float.NaN);
        fixed (sbyte* pq = q)
        fixed (short* ps = sums)
        fixed (float* py = y)
        {
            Int4MatVec.GroupSums(m, pq, ps);
            Int4MatVec.Run(m, pq, ps, 1f, py, 2, 4);
        }

        for (int r = 0; r < 20; r++)
        {
            Assert.Equal(r is >= 8 and < 16, !float.IsNaN(y[r]));
        }
    }

    [Fact]
    public void GroupSums_PaddedInput_SumsEachGroupAndZeroesThePadding()
    {
        using var source = new TestMatrix(4, 200, seed: 1);
        using Int4Matrix m = Int4Matrix.Quantize(source.Dense, 4, 64);
        var q = new sbyte[m.PaddedCols];
        for (int i = 0; i < 200; i++)
        {
            q[i] = (sbyte)(i % 7 - 3);
        }

        var sums = new short[m.ScaleStride];
        sums.AsSpan().Fill(99);
        fixed (sbyte* pq = q)
        fixed (short* ps = sums)
        {
            Int4MatVec.GroupSums(m, pq, ps);
        }

        for (int g = 0; g < m.ScaleStride; g++)
        {
            int expected = 0;
            for (int i = g * 64; i < Math.Min(200, (g + 1) * 64) && g < m.Groups; i++)
            {
                expected += q[i];
            }

            Assert.Equal(expected, sums[g]);
        }
    }
}
