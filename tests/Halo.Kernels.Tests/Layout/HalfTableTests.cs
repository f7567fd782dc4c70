using Halo.Core.Formats;
using Halo.Kernels.Layout;

namespace Halo.Kernels.Tests.Layout;

public sealed class HalfTableTests
{
    [Fact]
    public void FromTensor_F16Matrix_ViewsPairsLowHalfFirst()
    {
        Half[] values = [(Half)1f, (Half)(-2f), (Half)0.5f, (Half)3f];
        byte[] bytes = values.SelectMany(v => BitConverter.GetBytes(v)).ToArray();
        TensorView tensor = GgmlTernaryEncoder.View("token_embd.weight", GgmlType.F16, [2, 2], bytes, out var handle);
        try
        {
            uint[] words = HalfTable.FromTensor(tensor, "m.gguf").ToArray();

            Assert.Equal(HalfTable.Pack(values), words);
            Assert.Equal(BitConverter.HalfToUInt16Bits(values[0]), words[0] & 0xFFFF);
            Assert.Equal(BitConverter.HalfToUInt16Bits(values[1]), words[0] >> 16);
        }
        finally
        {
            handle.Free();
        }
    }

    [Fact]
    public void FromTensor_F32Table_NotSupportedSoAutoFallsBackToCpu()
    {
        TensorView tensor = GgmlTernaryEncoder.View("output.weight", GgmlType.F32, [2, 2], new byte[16], out var handle);
        try
        {
            var error = Assert.Throws<NotSupportedException>(() => HalfTable.FromTensor(tensor, "m.gguf").ToArray());
            Assert.Contains("output.weight", error.Message);
        }
        finally
        {
            handle.Free();
        }
    }

    [Fact]
    public void FromTensor_OddRowLength_ThrowsInvalidModel()
    {
        TensorView tensor = GgmlTernaryEncoder.View("token_embd.weight", GgmlType.F16, [3, 2], new byte[12], out var handle);
        try
        {
            Assert.Throws<InvalidModelException>(() => HalfTable.FromTensor(tensor, "m.gguf").ToArray());
        }
        finally
        {
            handle.Free();
        }
    }
}
