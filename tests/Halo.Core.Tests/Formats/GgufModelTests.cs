using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

public class GgufModelTests
{
    [Fact]
    public void Open_SyntheticModel_BuildsConfigFromBitNetKeys()
    {
        using var dir = new TempDir();
        string path = GgufTestFiles.WriteSmallModel(dir);

        using GgufModel model = GgufModel.Open(path);

        ModelConfig c = model.Config;
        Assert.Equal("gguf", model.Format);
        Assert.Equal("bitnet", c.Architecture);
        Assert.Equal(256, c.HiddenSize);
        Assert.Equal(768, c.FeedForwardSize);
        Assert.Equal(1, c.LayerCount);
        Assert.Equal(4, c.HeadCount);
        Assert.Equal(2, c.KvHeadCount);
        Assert.Equal(64, c.HeadDim);
        Assert.Equal(300, c.VocabSize);
        Assert.Equal(512, c.ContextLength);
        Assert.Equal(500000f, c.RopeTheta);
        Assert.Equal(1e-5f, c.RmsNormEps);
        Assert.Equal(Activation.Silu, c.Activation);
        Assert.True(c.TiedEmbeddings);
        Assert.True(c.RandomWeights);
        Assert.Contains("random weights", c.Name);
    }

    [Fact]
    public void Open_SyntheticModel_ReadsTokenizerMetadata()
    {
        using var dir = new TempDir();
        string path = GgufTestFiles.WriteSmallModel(dir);

        using GgufModel model = GgufModel.Open(path);

        var t = model.Tokenizer!;
        Assert.Equal("gpt2", t.Model);
        Assert.Equal("llama-bpe", t.PreTokenizer);
        Assert.Equal(300, t.Tokens.Count);
        Assert.Equal("<|begin_of_text|>", t.Tokens[t.BosId]);
        Assert.Equal("<|end_of_text|>", t.Tokens[t.EosId]);
        Assert.Equal("<|eot_id|>", t.Tokens[t.EotId]);
        Assert.Equal("Ġ t", t.Merges[0]);
        Assert.Equal(3, t.TokenTypes![t.BosId]);
        Assert.Contains("<|start_header_id|>", t.ChatTemplate);
    }

    [Theory]
    [InlineData("bitnet", null, Activation.Silu)]
    [InlineData("bitnet", "relu2", Activation.Relu2)]
    [InlineData("bitnet-b1.58", null, Activation.Relu2)]
    [InlineData("bitnet-b1.58", "silu", Activation.Silu)]
    public void ReadConfig_ArchitectureAndActivationKey_FollowsDesignRule(string arch, string? activationKey, Activation expected)
    {
        using var dir = new TempDir();
        string source = GgufTestFiles.WriteSmallModel(dir);
        string path = dir.File("edited.gguf");
        GgufTestFiles.Rewrite(source, path, m =>
        {
            foreach (string key in m.Keys.Where(k => k.StartsWith("bitnet.", StringComparison.Ordinal)).ToList())
            {
                GgufValue v = m[key];
                m.Remove(key);
                if (key != "bitnet.hidden_activation")
                {
                    m.Set(arch + key["bitnet".Length..], v);
                }
            }

            m.Set("general.architecture", arch);
            if (activationKey is not null)
            {
                m.Set(arch + ".hidden_activation", activationKey);
            }
        });

        using GgufModel model = GgufModel.Open(path);

        Assert.Equal(arch, model.Config.Architecture);
        Assert.Equal(expected, model.Config.Activation);
    }

    [Fact]
    public void Open_OutputWeightPresent_IsNotTied()
    {
        using var dir = new TempDir();
        string source = GgufTestFiles.WriteSmallModel(dir);
        string path = dir.File("untied.gguf");
        byte[] head;
        long[] shape;
        using (GgufFile g = GgufFile.Open(source))
        {
            TensorView e = g.GetTensor("token_embd.weight");
            head = e.Bytes.ToArray();
            shape = e.Shape;
        }

        GgufTestFiles.Rewrite(source, path, addTensors: [("output.weight", GgmlType.F16, shape, head)]);

        using GgufModel model = GgufModel.Open(path);
        Assert.False(model.Config.TiedEmbeddings);
    }
}
