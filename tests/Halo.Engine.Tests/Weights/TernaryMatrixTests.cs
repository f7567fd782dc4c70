using Halo.Core.Formats;
using Halo.Engine.Tests.Reference;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Weights;

public sealed unsafe class TernaryMatrixTests
{
    [Theory]
    [InlineData(GgmlType.TQ2_0)]
    [InlineData(GgmlType.TQ1_0)]
    public void FromTensor_GgufBlocks_DecodesEveryWeightAndScale(GgmlType type)
    {
        const int rows = 7, cols = 512;
        var rng = new Random(3);
        var values = new sbyte[rows * cols];
        var scales = new float[rows * cols / 256];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(rng.Next(3) - 1);
        }

        for (int i = 0; i < scales.Length; i++)
        {
            scales[i] = (float)(Half)(0.5f + (float)rng.NextDouble());
        }

        byte[] bytes = type == GgmlType.TQ2_0 ? TestModelSource.EncodeTq2(values, scales) : TestModelSource.EncodeTq1(values, scales);
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", type, [cols, rows], p, bytes.Length);
            using TernaryMatrix m = TernaryMatrix.FromTensor("f", view, 0.25f);
            Assert.Equal(2, m.Tiles);
            Assert.Equal(0.25f, m.TensorScale);
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < cols; c++)
                {
                    float expected = values[r * cols + c] * scales[(r * cols + c) / 256];
                    Assert.Equal(expected, m.Get(r, c));
                    (int value, float scale) = ReferenceModel.Weight(view, r, c);
                    Assert.Equal(expected, value * scale);
                }
            }
        }
    }

    [Fact]
    public void FromValues_OneScalePerRow_HasRowScales()
    {
        const int rows = 6, cols = 768;
        sbyte[] values = RandomTernary(rows, cols, seed: 5);
        var scales = new float[rows * 3];
        for (int r = 0; r < rows; r++)
        {
            scales.AsSpan(r * 3, 3).Fill(0.5f + r);
        }

        // Row 2's middle block is all zeros with another scale (as TQ2_0 writes d = 0 for it): it does not count.
        values.AsSpan(2 * cols + 256, 256).Clear();
        scales[2 * 3 + 1] = 0f;
        // Row 4 is all zeros.
        values.AsSpan(4 * cols, cols).Clear();
        scales.AsSpan(4 * 3, 3).Fill(9f);
        using TernaryMatrix m = TernaryMatrix.FromValues("w", values, scales, rows, cols, 1f);
        Assert.True(m.RowScales != null);
        for (int r = 0; r < rows; r++)
        {
            Assert.Equal(r == 4 ? 0f : 0.5f + r, m.RowScales[r]);
        }
    }

    [Fact]
    public void FromValues_BlockScalesDifferWithinARow_HasNoRowScales()
    {
        const int rows = 3, cols = 512;
        var scales = new float[rows * 2];
        scales.AsSpan().Fill(1f);
        scales[5] = 1.25f;
        using TernaryMatrix m = TernaryMatrix.FromValues("w", RandomTernary(rows, cols, seed: 6), scales, rows, cols, 1f);
        Assert.True(m.RowScales == null);
    }

    private static sbyte[] RandomTernary(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var values = new sbyte[rows * cols];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(rng.Next(3) - 1);
        }

        values[0] = 1;
        return values;
    }

    [Fact]
    public void FromTensor_ShortData_ThrowsInvalidModel()
    {
        var bytes = new byte[66 * 3];
        fixed (byte* p = bytes)
        {
            var view = new TensorView("blk.0.attn_q.weight", GgmlType.TQ2_0, [256, 4], p, bytes.Length);
            var e = Assert.Throws<InvalidModelException>(() => TernaryMatrix.FromTensor("model.gguf", view, 1f));
            Assert.Contains("blk.0.attn_q.weight", e.Message);
            Assert.Contains("model.gguf", e.Message);
        }
    }

    [Fact]
    public void FromTensor_ColumnsNotMultipleOf256_ThrowsInvalidModel()
    {
        var bytes = new byte[1000];
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", GgmlType.TQ2_0, [100, 4], p, bytes.Length);
            Assert.Throws<InvalidModelException>(() => TernaryMatrix.FromTensor("f", view, 1f));
        }
    }

    [Fact]
    public void FromTensor_UnsupportedType_ThrowsInvalidModel()
    {
        var bytes = new byte[4096];
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", GgmlType.Q8_0, [256, 4], p, bytes.Length);
            var e = Assert.Throws<InvalidModelException>(() => TernaryMatrix.FromTensor("f", view, 1f));
            Assert.Contains("Q8_0", e.Message);
        }
    }
}
