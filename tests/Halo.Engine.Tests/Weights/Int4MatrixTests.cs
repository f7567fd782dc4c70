using Halo.Core.Formats;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Weights;

public sealed unsafe class Int4MatrixTests
{
    /// <summary>
    /// Every weight comes back within half a quantization step of its group, except that the side of the group
    /// opposite its extreme has one level less (+7 against -8) and can clip by up to a whole step, plus what rounding
    /// the group scale to 8 bits moves the extreme (at most 8 * half a unit of the row scale).
    /// </summary>
    [Theory]
    [InlineData(GgmlType.F16, 9, 320, 32)]
    [InlineData(GgmlType.F32, 6, 200, 64)]
    [InlineData(GgmlType.BF16, 5, 2560, 32)]
    public void Quantize_RandomRows_DequantizesWithinHalfAStep(GgmlType type, int rows, int cols, int groupSize)
    {
        using var source = new TestMatrix(rows, cols, seed: 11, type);
        using Int4Matrix m = Int4Matrix.Quantize(source.Dense, rows, groupSize);
        Assert.Equal(cols, m.Cols);
        Assert.Equal(0, m.PaddedCols % Int4Matrix.BlockCols);
        for (int r = 0; r < rows; r++)
        {
            float rowScale = m.RowScale(r);
            float groupMax = 0f;
            for (int c = 0; c < cols; c++)
            {
                int code = m.Code(r, c);
                Assert.InRange(code, Int4Matrix.MinQ, Int4Matrix.MaxQ);
                float step = m.GroupScale(r, c / groupSize) * rowScale;
                float w = source.Values[(long)r * cols + c], error = Math.Abs(w - code * step);
                bool clipped = code == Int4Matrix.MaxQ && Math.Abs(w) > Math.Abs(code * step);
                Assert.True(error <= (clipped ? 1f : 0.5f) * Math.Abs(step) + 4f * rowScale + 1e-7f, $"({r}, {c}): error {error}, step {step}");
                groupMax = Math.Max(groupMax, Math.Abs(m.GroupScale(r, c / groupSize)));
            }

            Assert.Equal(Int4Matrix.MaxScale, groupMax); // the largest group uses the whole 8-bit range
            for (int c = cols; c < m.PaddedCols; c++)
            {
                Assert.Equal(0, m.Code(r, c));
            }
        }
    }

    [Fact]
    public void Quantize_ZeroRowAndSmallGroups_StayFinite()
    {
        // Row 0 all zero; row 1 one large group and tiny ones (their 8-bit scale rounds to 0: weights become 0).
        using var source = new TestMatrix(2, 128, seed: 1, GgmlType.F32, (r, c) => r == 0 ? 0f : c < 32 ? 1f : 1e-5f);
        using Int4Matrix m = Int4Matrix.Quantize(source.Dense, 2, 32);
        Assert.Equal(0f, m.RowScale(0));
        Assert.Equal(Int4Matrix.MinQ, m.Code(1, 0));                 // the extreme is code -8 ...
        Assert.Equal(-Int4Matrix.MaxScale, m.GroupScale(1, 0));      // ... under a negative scale
        Assert.Equal(0, m.GroupScale(1, 1));
        Assert.Equal(0, m.Code(1, 40));
        Assert.Equal(1f, m.Code(1, 5) * m.GroupScale(1, 0) * m.RowScale(1), 5);
    }

    /// <summary>GroupScaledMatrix.QuantizeFrom, which the 6-bit matrix shares, releases each source row once.</summary>
    [Fact]
    public void Quantize_ConsumedCallback_CoversEverySourceByteOnce()
    {
        const int rows = 3001, cols = 128;
        using var source = new TestMatrix(rows, cols, seed: 2);
        var covered = new int[rows];
        using Int4Matrix m = Int4Matrix.Quantize(source.Dense, rows, 64, (start, length) =>
        {
            long first = (start - (nint)source.Data) / (cols * 2);
            lock (covered)
            {
                for (long r = first; r < first + length / (cols * 2); r++)
                {
                    covered[r]++;
                }
            }
        });
        Assert.All(covered, c => Assert.Equal(1, c));
    }

    [Theory]
    [InlineData(16, 128)]
    [InlineData(32, 0)]
    [InlineData(32, Int4Matrix.MaxCols + 1)]
    public void Quantize_UnsupportedShape_Throws(int groupSize, int cols)
    {
        using var source = new TestMatrix(1, Math.Max(cols, 1), seed: 1, GgmlType.F32, (_, _) => 0f);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            using Int4Matrix m = Int4Matrix.Quantize(cols == 0 ? DenseMatrixWithZeroCols(source) : source.Dense, 1, groupSize);
        });
    }

    private static DenseMatrix DenseMatrixWithZeroCols(TestMatrix source) =>
        DenseMatrix.FromTensor("test", new TensorView("w", GgmlType.F32, [0, 1], source.Data, 4), 0);
}
