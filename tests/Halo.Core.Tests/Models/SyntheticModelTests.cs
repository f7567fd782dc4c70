using System.Security.Cryptography;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Core.Tests.Formats;
using Halo.Testing;

namespace Halo.Core.Tests.Models;

public class SyntheticModelTests
{
    [Fact]
    public void Write_SameSeed_SameBytes_OtherSeed_OtherBytes()
    {
        using var dir = new TempDir();
        SyntheticModel.Write(GgufTestFiles.SmallSpec(seed: 1), dir.File("a.gguf"));
        SyntheticModel.Write(GgufTestFiles.SmallSpec(seed: 1), dir.File("b.gguf"));
        SyntheticModel.Write(GgufTestFiles.SmallSpec(seed: 2), dir.File("c.gguf"));

        string a = Hash(dir.File("a.gguf"));
        Assert.Equal(a, Hash(dir.File("b.gguf")));
        Assert.NotEqual(a, Hash(dir.File("c.gguf")));
        Assert.False(File.Exists(dir.File("a.gguf.partial")));
    }

    [Theory]
    [InlineData(GgmlType.TQ2_0, "bb138d9a283afd56a3b7706fa51ad451979c3b40e7abf381e9443d3ad845a086")]
    [InlineData(GgmlType.TQ1_0, "4af4ccdb670239990d983569afa5bc2472babcd6f5b70dcd4819e67ad52fd0c4")]
    public void Write_TinySeed1_IsByteIdenticalToTheLlamaCppFixtures(GgmlType type, string sha256)
    {
        // Halo.Engine.Tests/LlamaCpp/fixtures hold llama.cpp's outputs for exactly these files: any change to the
        // generator must come with regenerated fixtures (LlamaCpp/regenerate-fixtures.mjs).
        using var dir = new TempDir();
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", type, seed: 1), dir.File("tiny.gguf"));

        Assert.Equal(sha256, Hash(dir.File("tiny.gguf")).ToLowerInvariant());
    }

    [Fact]
    public void Write_Metadata_LabelsRandomWeights()
    {
        using var dir = new TempDir();
        string path = GgufTestFiles.WriteSmallModel(dir);

        using GgufFile g = GgufFile.Open(path);

        Assert.Equal(true, g.Metadata.GetBoolOrNull("halo.synthetic"));
        Assert.Contains("random weights", g.Metadata.GetString("general.name"));
        Assert.Contains("RANDOM", g.Metadata.GetString("general.description"));
        Assert.Equal(7L, g.Metadata.GetInt64("halo.synthetic.seed"));
        Assert.Equal(37L, g.Metadata.GetInt64("general.file_type"));
    }

    [Theory]
    [InlineData(GgmlType.TQ2_0)]
    [InlineData(GgmlType.TQ1_0)]
    public void Write_TernaryWeights_AreBalancedWithSaneScales(GgmlType type)
    {
        using var dir = new TempDir();
        string path = dir.File("m.gguf");
        SyntheticModel.Write(GgufTestFiles.SmallSpec(type), path);
        using GgufModel model = GgufModel.Open(path);

        TensorView q = model.GetTensor("blk.0.ffn_gate.weight");
        Assert.Equal(type, q.Type);
        var values = new float[q.ElementCount];
        if (type == GgmlType.TQ2_0)
        {
            Tq2_0.Dequantize(q.Bytes, values);
        }
        else
        {
            Tq1_0.Dequantize(q.Bytes, values);
        }

        double zeros = values.Count(v => v == 0) / (double)values.Length;
        Assert.InRange(zeros, 0.30, 0.37);
        Assert.All(values, v => Assert.True(v == 0 || Math.Abs(Math.Abs(v) - 1) <= 0.26, $"block scale {v}"));
        float scale = BitConverter.ToSingle(model.GetTensor("blk.0.ffn_gate.scale").Bytes);
        Assert.InRange(scale, 0.5f / MathF.Sqrt(256), 2f / MathF.Sqrt(256));
        float[] norm = ToFloats(model.GetTensor("blk.0.attn_norm.weight").Bytes);
        Assert.All(norm, v => Assert.InRange(v, 0.9f, 1.1f));
    }

    [Fact]
    public void Write_Tq1AndTq2SameSeed_HoldTheSameWeights()
    {
        using var dir = new TempDir();
        SyntheticModel.Write(GgufTestFiles.SmallSpec(GgmlType.TQ2_0), dir.File("2.gguf"));
        SyntheticModel.Write(GgufTestFiles.SmallSpec(GgmlType.TQ1_0), dir.File("1.gguf"));
        using GgufModel m2 = GgufModel.Open(dir.File("2.gguf"));
        using GgufModel m1 = GgufModel.Open(dir.File("1.gguf"));

        TensorView t2 = m2.GetTensor("blk.0.attn_v.weight");
        TensorView t1 = m1.GetTensor("blk.0.attn_v.weight");
        var v2 = new float[t2.ElementCount];
        var v1 = new float[t1.ElementCount];
        Tq2_0.Dequantize(t2.Bytes, v2);
        Tq1_0.Dequantize(t1.Bytes, v1);

        Assert.Equal(v2, v1);
    }

    [Fact]
    public void PresetConfig_2b_HasBitNet2B4TShapes()
    {
        ModelConfig c = SyntheticModelSpec.PresetConfig("2b");

        Assert.Equal((2560, 6912, 30, 20, 5, 128, 128256, 4096), (c.HiddenSize, c.FeedForwardSize, c.LayerCount, c.HeadCount, c.KvHeadCount, c.HeadDim, c.VocabSize, c.ContextLength));
        Assert.Equal(500000f, c.RopeTheta);
        Assert.Equal(1e-5f, c.RmsNormEps);
    }

    [Theory]
    [InlineData("tiny")]
    [InlineData("0.7b")]
    [InlineData("2b")]
    public void PresetConfig_Any_RowsAreWholeTernaryBlocks(string preset)
    {
        ModelConfig c = SyntheticModelSpec.PresetConfig(preset);

        Assert.Equal(0, c.HiddenSize % 256);
        Assert.Equal(0, c.FeedForwardSize % 256);
        Assert.Equal(c.HiddenSize, c.HeadCount * c.HeadDim);
    }

    [Fact]
    public void Write_Llama3TokenizerDirectory_CarriesFullVocabulary()
    {
        using var dir = new TempDir();
        string path = dir.File("l3.gguf");
        var spec = GgufTestFiles.SmallSpec() with { TokenizerDirectory = TestPaths.Llama3TokenizerDir };

        SyntheticModel.Write(spec, path);
        using GgufModel model = GgufModel.Open(path);

        var t = model.Tokenizer!;
        Assert.Equal(128256, t.Tokens.Count);
        Assert.Equal(128256, model.Config.VocabSize);
        Assert.Equal(280147, t.Merges.Count);
        Assert.Equal((128000, 128001, 128009), (t.BosId, t.EosId, t.EotId));
        Assert.Equal("The", t.Tokens[791]);
        Assert.Equal(3, t.TokenTypes![128009]);
    }

    [Fact]
    public void Write_UnknownWeightType_ThrowsAndLeavesNoFile()
    {
        using var dir = new TempDir();
        string path = dir.File("bad.gguf");

        Assert.Throws<ArgumentException>(() => SyntheticModel.Write(GgufTestFiles.SmallSpec(GgmlType.Q8_0), path));

        Assert.False(File.Exists(path));
        Assert.False(File.Exists(path + ".partial"));
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    private static float[] ToFloats(ReadOnlySpan<byte> bytes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray();
}
