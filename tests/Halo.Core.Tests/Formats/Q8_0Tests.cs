using Halo.Core.Formats;

namespace Halo.Core.Tests.Formats;

public class Q8_0Tests
{
    [Fact]
    public void Quantize_KnownBlock_StoresScaleThenInt8()
    {
        var x = new float[32];
        x[0] = 127f;
        x[1] = -63.5f; // rounds half away from zero like roundf
        x[2] = 1f;
        var block = new byte[Q8_0.BlockBytes];

        Q8_0.Quantize(x, block);

        Assert.Equal(1f, Fp16.ToFloat(BitConverter.ToUInt16(block, 0)));
        Assert.Equal(127, (sbyte)block[2]);
        Assert.Equal(-64, (sbyte)block[3]);
        Assert.Equal(1, (sbyte)block[4]);
    }

    [Fact]
    public void Dequantize_AfterQuantize_IsWithinHalfAStep()
    {
        var rng = new Random(5);
        var x = new float[64];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(rng.NextDouble() * 4 - 2);
        }

        var bytes = new byte[2 * Q8_0.BlockBytes];
        var back = new float[64];
        Q8_0.Quantize(x, bytes);
        Q8_0.Dequantize(bytes, back);

        for (int i = 0; i < x.Length; i++)
        {
            Assert.InRange(back[i] - x[i], -0.01f, 0.01f);
        }
    }
}
