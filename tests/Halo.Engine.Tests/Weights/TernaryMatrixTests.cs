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
