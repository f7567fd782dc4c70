using Halo.Core.Formats;

namespace Halo.Core.Tests.Formats;

public class BitNetPackingTests
{
    [Fact]
    public void Unpack_PackedRow_HoldsFourRowsAQuarterApart()
    {
        // out = 8, in = 2: packed row 1 holds rows 1, 3, 5, 7 in bits 0-1, 2-3, 4-5, 6-7.
        var packed = new byte[2 * 2];
        packed.AsSpan().Fill(0b01_01_01_01);               // every value 0
        packed[2] = 0b10_01_00_01;                          // column 0 of rows 1, 3, 5, 7 = 0, -1, 0, +1
        var w = new sbyte[8 * 2];

        BitNetPacking.Unpack(packed, 8, 2, w);

        Assert.Equal(0, w[1 * 2]);
        Assert.Equal(-1, w[3 * 2]);
        Assert.Equal(0, w[5 * 2]);
        Assert.Equal(1, w[7 * 2]);
        Assert.Equal(16 - 2, w.Count(v => v == 0));
    }

    [Fact]
    public void Pack_ThenUnpack_RoundTrips()
    {
        var rng = new Random(9);
        var w = new sbyte[16 * 8];
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = (sbyte)(rng.Next(3) - 1);
        }

        var packed = new byte[4 * 8];
        var back = new sbyte[w.Length];
        BitNetPacking.Pack(w, 16, 8, packed);
        BitNetPacking.Unpack(packed, 16, 8, back);

        Assert.Equal(w, back);
    }

    [Fact]
    public void Ternarize_Weights_UsesMeanAbsoluteScale()
    {
        float[] w = [0.3f, -0.1f, 0.05f, -0.35f];   // mean|W| = 0.2: W/s = 1.5, -0.5, 0.25, -1.75

        var q = new sbyte[4];
        float s = BitNetPacking.Ternarize(w, q);

        Assert.Equal(0.2f, s, 1e-6f);
        Assert.Equal([1, 0, 0, -1], q.Select(v => (int)v));  // round half to even: 1.5 -> 2 -> clamp 1, -0.5 -> 0
    }
}
