using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

public class I2STests
{
    [Fact]
    public void Encode_OneWeight_LandsInBitnetCppBitsWithScaleTrailer()
    {
        // Element 32 of block 1 (index 160): byte 32 + 0, group 1 -> bits 4..5; every other weight 0 (code 1).
        var w = new sbyte[256];
        w[160] = -1;
        var bytes = new byte[I2S.TensorBytes(256)];

        I2S.Encode(w, 0.75f, bytes);

        Assert.Equal(256 / 4 + 32, bytes.Length);
        Assert.Equal(0b01_00_01_01, bytes[32]);
        Assert.All(bytes[..32], b => Assert.Equal(0b01_01_01_01, b));
        Assert.Equal(0.75f, I2S.Scale(bytes, 256));
    }

    [Fact]
    public void Decode_AfterEncode_RoundTrips()
    {
        var rng = new Random(3);
        var w = new sbyte[1024];
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = (sbyte)(rng.Next(3) - 1);
        }

        var bytes = new byte[I2S.TensorBytes(w.Length)];
        var back = new sbyte[w.Length];
        I2S.Encode(w, 1f, bytes);
        I2S.Decode(bytes, back);

        Assert.Equal(w, back);
    }

    [Fact]
    public void GgufModelOpen_I2SProjections_BecomeTq2WithScaleFolded()
    {
        using var dir = new TempDir();
        string source = GgufTestFiles.WriteSmallModel(dir);
        string path = dir.File("i2s.gguf");
        GgufTestFiles.Rewrite(source, path, editTensor: t =>
        {
            if (t.Type != GgmlType.TQ2_0)
            {
                return (t.Name, t.Type, t.Shape, t.Bytes.ToArray());
            }

            var trits = new sbyte[t.ElementCount];
            Tq2_0.DecodeTernary(t.Bytes, trits);
            var bytes = new byte[I2S.TensorBytes(trits.Length)];
            I2S.Encode(trits, 0.5f, bytes);
            return (t.Name, GgmlType.I2_S, t.Shape, bytes);
        });

        using GgufModel original = GgufModel.Open(source);
        using GgufModel model = GgufModel.Open(path);

        Assert.Equal(GgmlType.I2_S, model.File.GetTensor("blk.0.attn_q.weight").Type);
        foreach (string part in BitNetTensors.Projections)
        {
            TensorView a = original.GetTensor(BitNetTensors.Weight(0, part));
            TensorView b = model.GetTensor(BitNetTensors.Weight(0, part));
            Assert.Equal(GgmlType.TQ2_0, b.Type);
            var ta = new sbyte[a.ElementCount];
            var tb = new sbyte[b.ElementCount];
            Tq2_0.DecodeTernary(a.Bytes, ta);
            Tq2_0.DecodeTernary(b.Bytes, tb);
            Assert.Equal(ta, tb);
            Assert.Equal(1f, Tq2_0.BlockScale(b.Bytes));
            float sa = BitConverter.ToSingle(original.GetTensor(BitNetTensors.Scale(0, part)).Bytes);
            float sb = BitConverter.ToSingle(model.GetTensor(BitNetTensors.Scale(0, part)).Bytes);
            Assert.Equal(sa * 0.5f, sb);
        }
    }
}
