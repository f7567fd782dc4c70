using Halo.Core.Formats;
using Halo.Kernels.Layout;

namespace Halo.Kernels.Tests.Layout;

public sealed class TernaryLayoutTests
{
    private const int K = 512;
    private const int N = 3;

    [Theory]
    [InlineData(GgmlType.TQ2_0, N)]
    [InlineData(GgmlType.TQ1_0, N)]
    [InlineData(GgmlType.TQ2_0, 513)]   // 1026 blocks: two parallel repack chunks of 1024, the second partial
    [InlineData(GgmlType.TQ1_0, 513)]
    public void FromTensor_GgmlBlocks_RecoversEveryValueAndScale(GgmlType type, int rows)
    {
        sbyte[] values = TestData.Ternary(5, rows * K);
        Half[] scales = TestData.Floats(6, rows * K / 256, 3f).Select(s => (Half)s).ToArray();
        byte[] bytes = type == GgmlType.TQ2_0 ? GgmlTernaryEncoder.EncodeTq2(values, scales) : GgmlTernaryEncoder.EncodeTq1(values, scales);
        TensorView tensor = GgmlTernaryEncoder.View("blk.0.attn_q.weight", type, [K, rows], bytes, out var handle);
        try
        {
            TernaryLayout layout = TernaryLayout.FromTensor(tensor, "model.gguf");

            Assert.Equal(rows, layout.Rows);
            Assert.Equal(K, layout.Columns);
            Assert.Equal(scales.Select(s => (float)s), layout.Scales);
            for (int i = 0; i < rows * K; i++)
            {
                int code = (int)((layout.Codes[i / 16] >> TernaryLayout.CodeShift(i % 16)) & 3);
                Assert.True(code - 1 == values[i], $"value {i}: expected {values[i]}, decoded {code - 1}");
            }
        }
        finally
        {
            handle.Free();
        }
    }

    [Fact]
    public void FromTensor_Tq1BytesFromHaloCoreCodec_RecoversEveryValue()
    {
        // the formats layer's own TQ1_0 encoder (what `halo models synth --type tq1_0` writes), read by the repacker
        sbyte[] values = TestData.Ternary(6, N * K);
        float[] scales = [0.5f, 1.5f, 0.25f, 2f, 1f, 0.75f];
        var bytes = new byte[N * K / 256 * 54];
        Tq1_0.EncodeTernary(values, scales, bytes);
        TensorView tensor = GgmlTernaryEncoder.View("blk.0.ffn_up.weight", GgmlType.TQ1_0, [K, N], bytes, out var handle);
        try
        {
            TernaryLayout layout = TernaryLayout.FromTensor(tensor, "model.gguf");

            Assert.Equal(scales, layout.Scales);
            for (int i = 0; i < N * K; i++)
            {
                Assert.Equal(values[i], (int)((layout.Codes[i / 16] >> TernaryLayout.CodeShift(i % 16)) & 3) - 1);
            }
        }
        finally
        {
            handle.Free();
        }
    }

    [Fact]
    public void FromTensor_InputsNotMultipleOfBlock_ThrowsNamingTensor()
    {
        TensorView tensor = GgmlTernaryEncoder.View("blk.1.ffn_up.weight", GgmlType.TQ2_0, [100, 2], new byte[132], out var handle);
        try
        {
            var error = Assert.Throws<InvalidModelException>(() => TernaryLayout.FromTensor(tensor, "m.gguf"));
            Assert.Contains("blk.1.ffn_up.weight", error.Message);
            Assert.Contains("multiple of 256", error.Message);
        }
        finally
        {
            handle.Free();
        }
    }

    [Fact]
    public void FromTensor_TruncatedData_ThrowsWithExpectedSize()
    {
        TensorView tensor = GgmlTernaryEncoder.View("blk.0.attn_k.weight", GgmlType.TQ2_0, [256, 2], new byte[100], out var handle);
        try
        {
            var error = Assert.Throws<InvalidModelException>(() => TernaryLayout.FromTensor(tensor, "m.gguf"));
            Assert.Contains("expected 132", error.Message);
        }
        finally
        {
            handle.Free();
        }
    }

    [Fact]
    public void FromTensor_NonTernaryType_Throws()
    {
        TensorView tensor = GgmlTernaryEncoder.View("blk.0.attn_v.weight", GgmlType.F16, [256, 2], new byte[1024], out var handle);
        try
        {
            Assert.Throws<InvalidModelException>(() => TernaryLayout.FromTensor(tensor, "m.gguf"));
        }
        finally
        {
            handle.Free();
        }
    }
}
