using Halo.Core.Formats;

namespace Halo.Core.Tests.Formats;

public class Tq1_0Tests
{
    [Fact]
    public void Quantize_AllZeros_GivesGgmlCeilingBytes()
    {
        // Code 1 in every trit: qs = ceil(121 * 256 / 243) = 128; qh = ceil(40 * 3 * 256 / 243) = 127.
        var x = new float[256];
        var block = new byte[Tq1_0.BlockBytes];

        Tq1_0.Quantize(x, block);

        Assert.All(block[..48], b => Assert.Equal(128, b));
        Assert.All(block[48..52], b => Assert.Equal(127, b));
        Assert.Equal(0, Tq1_0.BlockScale(block));
    }

    [Fact]
    public void Quantize_FirstTritOfByte_IsMostSignificant()
    {
        // Element 0 is trit n = 0 of byte 0: +1 gives code 2 there: 2*81 + 1*(27+9+3+1) = 202 -> ceil(202*256/243) = 213.
        // Element 32 is trit n = 1 of byte 0.
        var x = new float[256];
        x[0] = 1;
        var block = new byte[Tq1_0.BlockBytes];

        Tq1_0.Quantize(x, block);

        Assert.Equal(213, block[0]);
        Assert.All(block[1..48], b => Assert.Equal(128, b));
    }

    [Fact]
    public void Dequantize_AfterQuantize_ReturnsTernaryTimesScale()
    {
        float[] x = Tq2_0Tests.RandomTernary(seed: 3, blocks: 4, scale: 0.25f);
        var bytes = new byte[4 * Tq1_0.BlockBytes];
        var back = new float[x.Length];

        Tq1_0.Quantize(x, bytes);
        Tq1_0.Dequantize(bytes, back);

        Assert.Equal(x, back);
    }

    [Fact]
    public void EncodeTernary_EveryPosition_DecodesBack()
    {
        // One +1 or -1 at a time in every position catches any mix-up of the three packing regions.
        var trits = new sbyte[256];
        var block = new byte[Tq1_0.BlockBytes];
        var back = new sbyte[256];
        for (int i = 0; i < 256; i++)
        {
            Array.Clear(trits);
            trits[i] = (sbyte)(i % 2 == 0 ? 1 : -1);
            Tq1_0.EncodeTernary(trits, [1f], block);
            Tq1_0.DecodeTernary(block, back);
            Assert.Equal(trits, back);
        }
    }

    [Fact]
    public void EncodeTernary_SameWeights_EqualsQuantize()
    {
        float[] x = Tq2_0Tests.RandomTernary(seed: 4, blocks: 2, scale: 2f);
        var trits = new sbyte[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            trits[i] = (sbyte)MathF.Sign(x[i]);
        }

        var quantized = new byte[2 * Tq1_0.BlockBytes];
        var encoded = new byte[2 * Tq1_0.BlockBytes];
        Tq1_0.Quantize(x, quantized);
        Tq1_0.EncodeTernary(trits, [2f, 2f], encoded);

        Assert.Equal(quantized, encoded);
    }
}
