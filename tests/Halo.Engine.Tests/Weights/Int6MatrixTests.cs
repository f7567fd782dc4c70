using Halo.Core.Formats;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Weights;

public sealed unsafe class Int6MatrixTests
{
    /// <summary>
    /// Every weight comes back within half a quantization step of its group, except that the side of the group
    /// opposite its extreme has one level less (+31 against -32) and can clip by up to a whole step, plus what
    /// rounding the group scale to 8 bits moves the extreme (at most 32 * half a unit of the row scale).
    /// </summary>
    [Theory]
    [InlineData(GgmlType.F16, 9, 320, 32)]
    [InlineData(GgmlType.F32, 6, 200, 64)]
    [InlineData(GgmlType.BF16, 5, 2560, 32)]
    public void Quantize_RandomRows_DequantizesWithinHalfAStep(GgmlType type, int rows, int cols, int groupSize)
    {
        using var source = new TestMatrix(rows, cols, seed: 11, type);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, rows, groupSize);
        Assert.Equal(cols, m.Cols);
        Assert.Equal(0, m.PaddedCols % Int6Matrix.BlockCols);
        var used = new bool[Int6Matrix.MaxQ - Int6Matrix.MinQ + 1];
        for (int r = 0; r < rows; r++)
        {
            float rowScale = m.RowScale(r);
            float groupMax = 0f;
            for (int c = 0; c < cols; c++)
            {
                int code = m.Code(r, c);
                Assert.InRange(code, Int6Matrix.MinQ, Int6Matrix.MaxQ);
                used[code - Int6Matrix.MinQ] = true;
                float step = m.GroupScale(r, c / groupSize) * rowScale;
                float w = source.Values[(long)r * cols + c], error = Math.Abs(w - code * step);
                bool clipped = code == Int6Matrix.MaxQ && Math.Abs(w) > Math.Abs(code * step);
                Assert.True(error <= (clipped ? 1f : 0.5f) * Math.Abs(step) + 16f * rowScale + 1e-7f, $"({r}, {c}): error {error}, step {step}");
                groupMax = Math.Max(groupMax, Math.Abs(m.GroupScale(r, c / groupSize)));
            }

            Assert.Equal(Int6Matrix.MaxScale, groupMax); // the largest group uses the whole 8-bit range
            for (int c = cols; c < m.PaddedCols; c++)
            {
                Assert.Equal(0, m.Code(r, c));
            }
        }

        // Both planes carry information: nearly all 64 codes occur (a lost 2-bit field would leave at most 16).
        Assert.InRange(used.Count(u => u), 56, 64);
    }

    /// <summary>
    /// Exact codes read back: row r holds code (r + c) mod 64 - 32 at column c (times 0.01), except one column per
    /// group that holds the extreme -32 (so every group scale is the same), so each column of a block sees 62 of
    /// the 64 codes across the rows and every nibble and 2-bit field is exercised.
    /// </summary>
    [Fact]
    public void Quantize_CodesSweptOverColumns_ReadBackExactly()
    {
        const int rows = 64, cols = 256;
        using var source = new TestMatrix(rows, cols, seed: 1, GgmlType.F32, (r, c) => ExpectedCode(r, c) * 0.01f);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, rows, 32);
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                Assert.Equal(ExpectedCode(r, c), m.Code(r, c));
            }
        }
    }

    private static int ExpectedCode(int r, int c) => c % 32 == r * 7 % 32 ? Int6Matrix.MinQ : (r + c) % 64 - 32;

    [Fact]
    public void Quantize_ZeroRowAndSmallGroups_StayFinite()
    {
        // Row 0 all zero; row 1 one large group and tiny ones (their 8-bit scale rounds to 0: weights become 0).
        using var source = new TestMatrix(2, 128, seed: 1, GgmlType.F32, (r, c) => r == 0 ? 0f : c < 32 ? 1f : 1e-5f);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, 2, 32);
        Assert.Equal(0f, m.RowScale(0));
        Assert.Equal(Int6Matrix.MinQ, m.Code(1, 0));                 // the extreme is code -32 ...
        Assert.Equal(-Int6Matrix.MaxScale, m.GroupScale(1, 0));      // ... under a negative scale
        Assert.Equal(0, m.GroupScale(1, 1));
        Assert.Equal(0, m.Code(1, 40));
        Assert.Equal(1f, m.Code(1, 5) * m.GroupScale(1, 0) * m.RowScale(1), 5);
    }

    [Fact]
    public void ArenaBytes_TwoBillionShapes_AreSixPointThreeBitsPerWeight()
    {
        // The tiles, what a one-token pass streams, plus the batched pass's input corrections (16 int32 a row, 0.2 bits
        // a weight at 2560 columns, read once per row by the batched pass only).
        long corrections = 128256L * Int6Matrix.Classes * sizeof(int);
        long bytes = Int6Matrix.ArenaBytes(128256, 2560, 32) - corrections;
        double bits = bytes * 8.0 / (128256L * 2560);
        Assert.InRange(bits, 6.25, 6.35);
    }

    [Theory]
    [InlineData(16, 128)]
    [InlineData(32, 0)]
    [InlineData(32, Int6Matrix.MaxCols + 1)]
    public void Quantize_UnsupportedShape_Throws(int groupSize, int cols)
    {
        using var source = new TestMatrix(1, Math.Max(cols, 1), seed: 1, GgmlType.F32, (_, _) => 0f);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            using Int6Matrix m = Int6Matrix.Quantize(cols == 0 ? DenseMatrixWithZeroCols(source) : source.Dense, 1, groupSize);
        });
    }

    private static DenseMatrix DenseMatrixWithZeroCols(TestMatrix source) =>
        DenseMatrix.FromTensor("test", new TensorView("w", GgmlType.F32, [0, 1], source.Data, 4), 0);
}
