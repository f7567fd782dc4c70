using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

public class SafetensorsModelTests
{
    internal static readonly ModelConfig SmallConfig = new()
    {
        Architecture = "bitnet",
        Name = "ckpt",
        HiddenSize = 256,
        FeedForwardSize = 512,
        LayerCount = 1,
        HeadCount = 4,
        KvHeadCount = 2,
        HeadDim = 64,
        VocabSize = 64,
        ContextLength = 128,
        RopeTheta = 500000f,
        RmsNormEps = 1e-5f,
        Activation = Activation.Relu2,
        TiedEmbeddings = true,
    };

    [Theory]
    [InlineData("autobitlinear")]
    [InlineData("bitlinear")]
    public void Open_MasterAndPackedForms_SameSeed_LoadTheSameTernaryModel(string linearClass)
    {
        using var dir = new TempDir();
        string master = dir.File("bf16");
        string packed = dir.File("packed");
        SyntheticCheckpoint.Write(master, SmallConfig, CheckpointForm.MasterBf16, seed: 3);
        SyntheticCheckpoint.Write(packed, SmallConfig, CheckpointForm.Packed, seed: 3, linearClass);

        using SafetensorsModel a = SafetensorsModel.Open(master);
        using SafetensorsModel b = SafetensorsModel.Open(packed);

        Assert.Equal("bf16", a.WeightForm);
        Assert.Equal("packed", b.WeightForm);
        Assert.Equal(linearClass, b.LinearClass);
        Assert.Empty(a.Warnings);
        Assert.Empty(b.Warnings);
        foreach (string part in BitNetTensors.Projections)
        {
            TensorView wa = a.GetTensor(BitNetTensors.Weight(0, part));
            TensorView wb = b.GetTensor(BitNetTensors.Weight(0, part));
            Assert.Equal(GgmlType.TQ2_0, wa.Type);
            Assert.Equal(wa.Shape, wb.Shape);
            Assert.True(wa.Bytes.SequenceEqual(wb.Bytes), $"{part}: ternary weights differ");
            float sa = Scale(a, part);
            float sb = Scale(b, part);
            Assert.InRange(sb / sa, 0.995f, 1.005f); // the packed form stores its scale as bf16
        }

        Assert.True(a.GetTensor("token_embd.weight").Bytes.SequenceEqual(b.GetTensor("token_embd.weight").Bytes));
    }

    [Fact]
    public void Open_MasterWeights_TernarizedWithMeanAbsScale()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.MasterBf16, seed: 4);
        using SafetensorsFile raw = SafetensorsFile.Open(dir.File("model.safetensors"));
        using SafetensorsModel model = SafetensorsModel.Open(dir.Path);

        raw.TryGetTensor("model.layers.0.mlp.down_proj.weight", out SafetensorsTensor hf);
        var w = new float[hf.ElementCount];
        Bf16.ToFloat(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(hf.Bytes), w);
        double meanAbs = w.Average(v => Math.Abs(v));
        TensorView t = model.GetTensor("blk.0.ffn_down.weight");
        var deq = new float[t.ElementCount];
        Tq2_0.Dequantize(t.Bytes, deq);

        Assert.Equal([512L, 256L], t.Shape);
        Assert.Equal(meanAbs, Scale(model, "ffn_down"), 1e-6);
        for (int i = 0; i < w.Length; i += 97)
        {
            Assert.Equal(Math.Clamp(Math.Round(w[i] / meanAbs, MidpointRounding.ToEven), -1, 1), deq[i]);
        }
    }

    [Fact]
    public void Open_Config_FollowsHfKeysAndRelu2()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.Packed, seed: 5);

        using IModelSource model = ModelFile.Open(dir.Path);

        Assert.Equal("safetensors", model.Format);
        ModelConfig c = model.Config;
        Assert.Equal((256, 512, 1, 4, 2, 64, 64, 128), (c.HiddenSize, c.FeedForwardSize, c.LayerCount, c.HeadCount, c.KvHeadCount, c.HeadDim, c.VocabSize, c.ContextLength));
        Assert.Equal(Activation.Relu2, c.Activation);
        Assert.True(c.TiedEmbeddings);
        Assert.Equal(GgmlType.BF16, model.GetTensor("blk.0.attn_sub_norm.weight").Type);
        Assert.Equal([64L * 4], model.GetTensor("blk.0.attn_sub_norm.weight").Shape);
        Assert.Equal([256L, 64L], model.GetTensor("token_embd.weight").Shape);
    }

    [Fact]
    public void Open_Sharded_EqualsSingleFile()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.File("one"), SmallConfig, CheckpointForm.Packed, seed: 6);
        SyntheticCheckpoint.Write(dir.File("three"), SmallConfig, CheckpointForm.Packed, seed: 6, shards: 3);

        using SafetensorsModel one = SafetensorsModel.Open(dir.File("one"));
        using SafetensorsModel three = SafetensorsModel.Open(dir.File("three"));

        Assert.True(File.Exists(Path.Combine(dir.File("three"), "model.safetensors.index.json")));
        foreach (TensorView t in one.Tensors)
        {
            Assert.True(t.Bytes.SequenceEqual(three.GetTensor(t.Name).Bytes), t.Name);
        }
    }

    [Fact]
    public void Open_ScalesStoredForTheOtherLinearClass_WarnsInverted()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.Packed, seed: 7, linearClass: "bitlinear");
        string config = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"bitlinear\"", "\"autobitlinear\"", StringComparison.Ordinal));

        using SafetensorsModel model = SafetensorsModel.Open(dir.Path);

        string warning = Assert.Single(model.Warnings);
        Assert.Contains("look inverted", warning);
        Assert.Contains("7 of 7", warning);
    }

    [Fact]
    public void Open_MissingProjection_NamesHfTensor()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.Packed, seed: 8);
        Rewrite(dir.File("model.safetensors"), drop: "model.layers.0.mlp.up_proj.weight");

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsModel.Open(dir.Path).Dispose());

        Assert.Equal(dir.Path, e.File);
        Assert.Contains("model.layers.0.mlp.up_proj.weight", e.Message);
    }

    [Fact]
    public void Open_PackedWithoutScale_NamesScaleTensor()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.Packed, seed: 8);
        Rewrite(dir.File("model.safetensors"), drop: "model.layers.0.self_attn.k_proj.weight_scale");

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsModel.Open(dir.Path).Dispose());

        Assert.Contains("k_proj.weight_scale", e.Message);
    }

    [Fact]
    public void Open_ConfigDisagreesWithShapes_NamesTensorAndShapes()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.MasterBf16, seed: 9);
        string config = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"intermediate_size\": 512", "\"intermediate_size\": 768", StringComparison.Ordinal));

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsModel.Open(dir.Path).Dispose());

        Assert.Contains("expected [768, 256]", e.Message);
    }

    [Fact]
    public void Open_MissingShardListedInIndex_NamesShard()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.Packed, seed: 10, shards: 2);
        File.Delete(Path.Combine(dir.Path, "model-00002-of-00002.safetensors"));

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsModel.Open(dir.Path).Dispose());

        Assert.Contains("model-00002-of-00002.safetensors", e.Message);
    }

    [Fact]
    public void Open_TruncatedShard_FailsCleanly()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.Packed, seed: 11);
        string file = dir.File("model.safetensors");
        byte[] bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes.AsSpan(0, bytes.Length - 100).ToArray());

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsModel.Open(dir.Path).Dispose());

        Assert.Equal(file, e.File);
        Assert.Contains("past the end", e.Message);
    }

    [Fact]
    public void Open_UntiedWithoutLmHead_SaysLmHeadMissing()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.Packed, seed: 13);
        string config = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false", StringComparison.Ordinal));

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsModel.Open(dir.Path).Dispose());

        Assert.Contains("lm_head.weight", e.Message);
    }

    [Fact]
    public void Open_BadConfigJson_NamesConfig()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.Path, SmallConfig, CheckpointForm.Packed, seed: 12);
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), "{ \"hidden_size\": ");

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsModel.Open(dir.Path).Dispose());

        Assert.EndsWith("config.json", e.File);
    }

    private static float Scale(IModelSource model, string part) =>
        BitConverter.ToSingle(model.GetTensor(BitNetTensors.Scale(0, part)).Bytes);

    private static void Rewrite(string path, string drop)
    {
        var w = new SafetensorsWriter();
        using (SafetensorsFile f = SafetensorsFile.Open(path))
        {
            foreach (SafetensorsTensor t in f.Tensors)
            {
                if (t.Name != drop)
                {
                    w.Add(t.Name, t.DType, t.Shape, t.Bytes.ToArray());
                }
            }
        }

        w.Write(path);
    }
}
