using Halo.Core.Formats;

namespace Halo.Core.Tests.Formats;

public class HalfConversionsTests
{
    [Theory]
    [InlineData(1.0f, (ushort)0x3F80)]
    [InlineData(-2.0f, (ushort)0xC000)]
    [InlineData(1.00390625f, (ushort)0x3F80)] // exactly halfway: ties to even (down)
    [InlineData(1.01171875f, (ushort)0x3F82)] // halfway above an odd mantissa: ties to even (up)
    public void Bf16FromFloat_Value_RoundsToNearestEven(float value, ushort expected)
    {
        Assert.Equal(expected, Bf16.FromFloat(value));
    }

    [Fact]
    public void Bf16FromFloat_NaN_StaysNaN()
    {
        ushort bits = Bf16.FromFloat(BitConverter.Int32BitsToSingle(0x7F800001));

        Assert.True(float.IsNaN(Bf16.ToFloat(bits)));
    }

    [Fact]
    public void Fp16_RoundTrip_KeepsRepresentableValues()
    {
        foreach (float v in (float[])[0f, 1f, -0.5f, 65504f, 6.1035156e-05f])
        {
            Assert.Equal(v, Fp16.ToFloat(Fp16.FromFloat(v)));
        }

        Assert.Equal((ushort)0x3C00, Fp16.FromFloat(1f));
        Assert.Equal(float.PositiveInfinity, Fp16.ToFloat(Fp16.FromFloat(70000f)));
    }
}
