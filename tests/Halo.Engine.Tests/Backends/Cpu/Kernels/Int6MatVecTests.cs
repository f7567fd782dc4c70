using System.Runtime.Intrinsics.X86;
using Halo.Core.Formats;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Tests.Weights;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

public sealed unsafe class Int6MatVecTests
{
    public enum Path
    {
        Avx512,
        Avx2,
        Scalar,
    }

    /// <summary>Ragged row counts (not a multiple of the 4-row tile), columns that need padding, both group sizes.</summary>
    public static TheoryData<Path, int, int, int> Shapes()
    {
        var data = new TheoryData<Path, int, int, int>();
        foreach (Path path in Enum.GetValues<Path>())
        {
            data.Add(path, 1, 128, 32);
            data.Add(path, 7, 200, 32);
            data.Add(path, 50, 320, 64);
            data.Add(path, 257, 256, 32);
            data.Add(path, 33, 2560, 64);
            data.Add(path, 18, 2560, 32);
        }

        return data;
    }

    /// <summary>
    /// Each path against the exact integer dot of the stored codes, group scales and input: the kernels sum in
    /// int32/int64 and round once, so only the final float multiply differs (relative 1e-6).
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes))]
    public void Run_RandomMatrix_MatchesExactIntegerDot(Path path, int rows, int cols, int groupSize)
    {
        if ((path == Path.Avx512 && !Avx512BW.IsSupported) || (path == Path.Avx2 && !Avx2.IsSupported))
        {
            return;
        }

        using var source = new TestMatrix(rows, cols, seed: rows * 31 + cols);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, rows, groupSize);
        sbyte[] q = RandomInput(m, seed: cols);
        var sums = new short[m.ScaleStride];
        var y = new float[rows + 1];
        y[rows] = 12345f;
        const float d = 0.03f;
        fixed (sbyte* pq = q)
        fixed (short* ps = sums)
        fixed (float* py = y)
        {
            Int6MatVec.GroupSums(m, pq, ps);
            switch (path)
            {
                case Path.Avx512:
                    Int6MatVec.RunAvx512(m, pq, ps, d, py, 0, m.Tiles);
                    break;
                case Path.Avx2:
                    Int6MatVec.RunAvx2(m, pq, ps, d, py, 0, m.Tiles);
                    break;
                default:
                    Int6MatVec.RunScalar(m, pq, ps, d, py, 0, m.Tiles);
                    break;
            }
        }

        for (int r = 0; r < rows; r++)
        {
            double expected = ExactDot(m, q, r) * ((double)m.RowScale(r) * d);
            Assert.True(Math.Abs(y[r] - expected) <= 1e-5 * Math.Abs(expected) + 1e-12, $"row {r}: {y[r]} vs {expected}");
        }

        Assert.Equal(12345f, y[rows]); // rows of the padded last tile are not written
    }

    /// <summary>
    /// Extreme inputs: all codes at -32 or +31 against q = +-127 (the largest pair sums vpmaddubsw sees) over the
    /// widest row the kernels accept, so int16 pair sums and int32 lanes must not overflow.
    /// </summary>
    [Theory]
    [InlineData(Path.Avx512)]
    [InlineData(Path.Avx2)]
    [InlineData(Path.Scalar)]
    public void Run_ExtremeCodesAtMaxCols_DoesNotOverflow(Path path)
    {
        if ((path == Path.Avx512 && !Avx512BW.IsSupported) || (path == Path.Avx2 && !Avx2.IsSupported))
        {
            return;
        }

        const int rows = 4, cols = Int6Matrix.MaxCols;
        // Row 0: every weight the group extreme -1 (code -32); row 1: +1 with one -1.0001 per group (codes 31);
        // rows 2, 3: alternating signs.
        using var source = new TestMatrix(rows, cols, seed: 1, GgmlType.F32, (r, c) => r switch
        {
            0 => -1f,
            1 => c % 32 == 0 ? -1.0001f : 1f,
            2 => c % 2 == 0 ? -1f : 0.97f,
            _ => c % 3 == 0 ? 0.97f : -1f,
        });
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, rows, 32);
        var q = new sbyte[m.PaddedCols];
        for (int i = 0; i < cols; i++)
        {
            q[i] = (sbyte)(i % 32 == 0 ? -127 : 127);
        }

        var sums = new short[m.ScaleStride];
        var y = new float[rows];
        fixed (sbyte* pq = q)
        fixed (short* ps = sums)
        fixed (float* py = y)
        {
            Int6MatVec.GroupSums(m, pq, ps);
            switch (path)
            {
                case Path.Avx512:
                    Int6MatVec.RunAvx512(m, pq, ps, 1f, py, 0, m.Tiles);
                    break;
                case Path.Avx2:
                    Int6MatVec.RunAvx2(m, pq, ps, 1f, py, 0, m.Tiles);
                    break;
                default:
                    Int6MatVec.RunScalar(m, pq, ps, 1f, py, 0, m.Tiles);
                    break;
            }
        }

        for (int r = 0; r < rows; r++)
        {
            double expected = ExactDot(m, q, r) * (double)m.RowScale(r);
            Assert.True(Math.Abs(y[r] - expected) <= 1e-5 * Math.Abs(expected), $"row {r}: {y[r]} vs {expected}");
        }
    }

    /// <summary>Eight tokens in one pass give exactly what one token at a time gives (same integer sums, same final multiply).</summary>
    [Theory]
    [InlineData(37, 2560, 32)]
    [InlineData(9, 200, 64)]
    public void RunBatch_EightTokens_EqualsOneTokenAtATime(int rows, int cols, int groupSize)
    {
        const int tokens = Int6MatVec.BatchTokens;
        using var source = new TestMatrix(rows, cols, seed: 4);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, rows, groupSize);
        var q = new sbyte[tokens * m.PaddedCols];
        var sums = new short[tokens * m.ScaleStride];
        var d = new float[tokens];
        var batched = new float[tokens * rows];
        var single = new float[tokens * rows];
        for (int k = 0; k < tokens; k++)
        {
            RandomInput(m, seed: k).CopyTo(q, k * m.PaddedCols);
            d[k] = 0.01f * (k + 1);
        }

        fixed (sbyte* pq = q)
        fixed (short* ps = sums)
        fixed (float* pd = d)
        fixed (float* pb = batched)
        fixed (float* py = single)
        {
            float** targets = stackalloc float*[tokens];
            for (int k = 0; k < tokens; k++)
            {
                targets[k] = pb + k * rows;
                Int6MatVec.GroupSums(m, pq + k * m.PaddedCols, ps + k * m.ScaleStride);
            }

            Int6MatVec.RunBatch(m, pq, ps, pd, targets, tokens, 0, m.Tiles);
            for (int k = 0; k < tokens; k++)
            {
                Int6MatVec.Run(m, pq + k * m.PaddedCols, ps + k * m.ScaleStride, d[k], py + k * rows, 0, m.Tiles);
            }
        }

        Assert.Equal(single, batched);
    }

    [Fact]
    public void Run_TileRange_WritesOnlyThoseRows()
    {
        using var source = new TestMatrix(20, 256, seed: 3);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, 20, 32);
        var q = new sbyte[m.PaddedCols];
        q.AsSpan().Fill(5);
        var sums = new short[m.ScaleStride];
        var y = new float[20];
        y.AsSpan().Fill(float.NaN);
        fixed (sbyte* pq = q)
        fixed (short* ps = sums)
        fixed (float* py = y)
        {
            Int6MatVec.GroupSums(m, pq, ps);
            Int6MatVec.Run(m, pq, ps, 1f, py, 2, 4);
        }

        for (int r = 0; r < 20; r++)
        {
            Assert.Equal(r is >= 8 and < 16, !float.IsNaN(y[r]));
        }
    }

    private static sbyte[] RandomInput(Int6Matrix m, int seed)
    {
        var rng = new Random(seed);
        var q = new sbyte[m.PaddedCols];
        for (int i = 0; i < m.Cols; i++)
        {
            q[i] = (sbyte)rng.Next(-127, 128);
        }

        return q;
    }

    private static long ExactDot(Int6Matrix m, sbyte[] q, int r)
    {
        long dot = 0;
        for (int c = 0; c < m.Cols; c++)
        {
            dot += (long)m.Code(r, c) * m.GroupScale(r, c / m.GroupSize) * q[c];
        }

        return dot;
    }
}
