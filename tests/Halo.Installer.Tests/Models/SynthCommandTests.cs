using Halo.Core.Formats;
using Halo.Testing;

namespace Halo.Installer.Tests.Models;

public sealed class SynthCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Synth_SameSeedTwice_WritesIdenticalReadableRandomWeightModels()
    {
        HaloCli.Result first = await HaloCli.RunAsync(null, "models", "synth", "--preset", "tiny", "--type", "tq1_0", "--seed", "9", "--out", _temp.File("a.gguf"));
        HaloCli.Result second = await HaloCli.RunAsync(null, "models", "synth", "--preset", "tiny", "--type", "tq1_0", "--seed", "9", "--out", _temp.File("b.gguf"));

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal(0, second.ExitCode);
        Assert.Contains("random weights", first.Stdout);
        Assert.Equal(File.ReadAllBytes(_temp.File("a.gguf")), File.ReadAllBytes(_temp.File("b.gguf")));
        using IModelSource model = ModelFile.Open(_temp.File("a.gguf"));
        Assert.True(model.Config.RandomWeights);
        Assert.Equal(GgmlType.TQ1_0, model.GetTensor("blk.0.attn_q.weight").Type);
    }

    [Fact]
    public async Task Synth_UnknownPreset_IsAUsageError()
    {
        HaloCli.Result result = await HaloCli.RunAsync(null, "models", "synth", "--preset", "70b", "--out", _temp.File("x.gguf"));

        Assert.Equal(2, result.ExitCode);
        Assert.False(File.Exists(_temp.File("x.gguf")));
    }

    [Fact]
    public async Task Synth_TokenizerDirWithoutTokenizerJson_ExitsOneWithClearError()
    {
        HaloCli.Result result = await HaloCli.RunAsync(null, "models", "synth", "--preset", "tiny", "--tokenizer", _temp.Path, "--out", _temp.File("x.gguf"));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no tokenizer.json", result.Stderr);
    }
}
