using Halo.Kernels.Kernels;
using Halo.Kernels.Layout;

namespace Halo.Kernels.Tests.Kernels;

/// <summary>The host-callable device helpers against .NET's own IEEE conversions, over every half and many floats.</summary>
public sealed class DeviceMathTests
{
    [Fact]
    public void HalfToFloat_EveryHalf_EqualsSystemHalf()
    {
        for (uint bits = 0; bits <= 0xFFFF; bits++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)bits);
            float actual = DeviceMath.HalfToFloat(bits);
            Assert.True(expected.Equals(actual), $"half 0x{bits:X4}: expected {expected}, got {actual}");
        }
    }

    [Fact]
    public void RoundToHalf_FloatsAcrossTheHalfRange_EqualsSystemHalfConversion()
    {
        var random = new Random(60);
        for (int i = 0; i < 200_000; i++)
        {
            // random bit patterns cover subnormal, normal, overflow and tie cases
            float value = BitConverter.Int32BitsToSingle(random.Next(0x30000000, 0x48000000) | (random.Next(2) << 31));
            float expected = (float)(Half)value;
            float actual = DeviceMath.RoundToHalf(value);
            Assert.True(expected.Equals(actual), $"{value:R}: expected {expected:R}, got {actual:R}");
        }

        foreach (float value in new[] { 0f, -0f, 65504f, 65519.99f, 65520f, 1e-8f, 2.980232e-8f, float.PositiveInfinity, float.NegativeInfinity })
        {
            Assert.Equal((float)(Half)value, DeviceMath.RoundToHalf(value));
        }
    }

    [Theory]
    [InlineData(-1)]   // random weights and activations
    [InlineData(0)]    // every weight 0
    [InlineData(1)]    // the extremes below: all +1 or all -1 against all -128 or all 127 fill the byte sums' lanes most
    [InlineData(2)]
    public void TernaryDot16_MatchesPlainSum(int pattern)
    {
        var random = new Random(61);
        for (int trial = 0; trial < 1000; trial++)
        {
            uint codes = 0;
            var a = new int[4];
            int expected = 0;
            for (int e = 0; e < 16; e++)
            {
                int w = pattern switch
                {
                    -1 => random.Next(3) - 1,
                    0 => 0,
                    _ => trial % 2 == 0 ? 1 : -1,
                };
                int x = pattern switch
                {
                    -1 => random.Next(-128, 128),
                    1 => -128,
                    2 => 127,
                    _ => random.Next(-128, 128),
                };
                codes |= (uint)(w + 1) << TernaryLayout.CodeShift(e);
                a[e / 4] |= (x & 0xFF) << (8 * (e % 4));
                expected += w * x;
            }

            Assert.Equal(expected, DeviceMath.TernaryDot16(codes, a[0], a[1], a[2], a[3]));
        }
    }
}
