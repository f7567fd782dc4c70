using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Installer.Convert;
using Halo.Installer.Tests.Models;
using Halo.Testing;

namespace Halo.Installer.Tests.Convert;

public sealed class ConvertCommandTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("tq2_0")]
    [InlineData("tq1_0")]
    public async Task Convert_SyntheticGguf_WritesAnH1bThatReadsBackIdentically(string type)
    {
        HaloCli.Result synth = await HaloCli.RunAsync(null, "models", "synth", "--preset", "tiny", "--type", type, "--seed", "5", "--out", _temp.File("m.gguf"));
        Assert.True(synth.ExitCode == 0, synth.ToString());

        HaloCli.Result result = await HaloCli.RunAsync(null, "convert", _temp.File("m.gguf"), "--out", _temp.File("m.h1b"), "--threads", "2");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("bit-identical", result.Stdout);
        Assert.Contains("greedy tokens identical", result.Stdout);
        Assert.Contains("m.h1b: writing", result.Stdout);
        using IModelSource source = ModelFile.Open(_temp.File("m.gguf"));
        using IModelSource converted = ModelFile.Open(_temp.File("m.h1b"));
        Assert.Equal("h1b", converted.Format);
        Assert.Empty(ModelComparison.Compare(source, converted));
        Assert.False(File.Exists(_temp.File("m.h1b.partial")));
    }

    [Fact]
    public void Convert_PackedSafetensorsCheckpoint_ConvertsAndRunsTheSameTokens()
    {
        ModelConfig config = SyntheticModelSpec.PresetConfig("tiny") with { Activation = Activation.Relu2 };
        SyntheticCheckpoint.Write(_temp.File("hf"), config, CheckpointForm.Packed, seed: 6);

        ConvertResult result = ModelConverter.Convert(_temp.File("hf"), _temp.File("hf.h1b"), new ConvertOptions { CheckTokens = 4, Threads = 2 }, null, null, CancellationToken.None);

        Assert.Equal("safetensors", result.SourceFormat);
        Assert.Equal(4, result.Tokens!.Count);
        using IModelSource converted = ModelFile.Open(_temp.File("hf.h1b"));
        Assert.Equal(Activation.Relu2, converted.Config.Activation);
    }

    [Fact]
    public async Task Convert_TruncatedInput_ExitsOneAndLeavesTheOldOutputAlone()
    {
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, 1), _temp.File("m.gguf"));
        byte[] bytes = File.ReadAllBytes(_temp.File("m.gguf"));
        File.WriteAllBytes(_temp.File("cut.gguf"), bytes[..(bytes.Length / 2)]);
        File.WriteAllText(_temp.File("out.h1b"), "previous output");

        HaloCli.Result result = await HaloCli.RunAsync(null, "convert", _temp.File("cut.gguf"), "--out", _temp.File("out.h1b"));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("cut.gguf", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
        Assert.Equal("previous output", File.ReadAllText(_temp.File("out.h1b")));
        Assert.False(File.Exists(_temp.File("out.h1b.partial")));
    }

    [Fact]
    public async Task Convert_MissingInput_ExitsOneWithClearError()
    {
        HaloCli.Result result = await HaloCli.RunAsync(null, "convert", _temp.File("nope.gguf"), "--out", _temp.File("x.h1b"));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no such file", result.Stderr);
    }

    [Fact]
    public async Task Convert_WithoutOut_IsAUsageError()
    {
        HaloCli.Result result = await HaloCli.RunAsync(null, "convert", _temp.File("m.gguf"));

        Assert.Equal(2, result.ExitCode);
    }
}
