using Halo.Core.Formats;

namespace Halo.Core.Tests.Formats;

public class Tq2_0Tests
{
    [Fact]
    public void Quantize_OneNonZeroElement_LandsInGgmlByteAndBits()
    {
        // Element 128 + 2*32 + 5 = 197: second half, n = 2, m = 5 -> byte 32 + 5, bits 4..5.
        var x = new float[256];
        x[197] = 0.5f;
        var block = new byte[Tq2_0.BlockBytes];

        Tq2_0.Quantize(x, block);

        for (int i = 0; i < 64; i++)
        {
            byte expected = i == 37 ? (byte)(0b01_10_01_01) : (byte)0b01_01_01_01;
            Assert.Equal(expected, block[i]);
        }

        Assert.Equal(0.5f, Tq2_0.BlockScale(block));
        Assert.Equal((37, 4), Tq2_0.Locate(197));
    }

    [Fact]
    public void Dequantize_AfterQuantize_ReturnsTernaryTimesScale()
    {
        float[] x = RandomTernary(seed: 1, blocks: 3, scale: 0.75f);
        var bytes = new byte[3 * Tq2_0.BlockBytes];
        var back = new float[x.Length];

        Tq2_0.Quantize(x, bytes);
        Tq2_0.Dequantize(bytes, back);

        Assert.Equal(x, back);
    }

    [Fact]
    public void EncodeTernary_SameWeights_EqualsQuantize()
    {
        float[] x = RandomTernary(seed: 2, blocks: 2, scale: 1.5f);
        var trits = new sbyte[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            trits[i] = (sbyte)MathF.Sign(x[i]);
        }

        var quantized = new byte[2 * Tq2_0.BlockBytes];
        var encoded = new byte[2 * Tq2_0.BlockBytes];
        Tq2_0.Quantize(x, quantized);
        Tq2_0.EncodeTernary(trits, [1.5f, 1.5f], encoded);
        var decoded = new sbyte[x.Length];
        Tq2_0.DecodeTernary(encoded, decoded);

        Assert.Equal(quantized, encoded);
        Assert.Equal(trits, decoded);
    }

    [Fact]
    public void Quantize_PartialBlock_Throws()
    {
        Assert.Throws<ArgumentException>(() => Tq2_0.Quantize(new float[100], new byte[66]));
    }

    internal static float[] RandomTernary(int seed, int blocks, float scale)
    {
        var rng = new Random(seed);
        var x = new float[blocks * 256];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (rng.Next(3) - 1) * scale;
        }

        x[0] = scale; // every block needs max|x| = scale for an exact round trip
        for (int b = 0; b < blocks; b++)
        {
            x[b * 256] = scale;
        }

        return x;
    }
}
