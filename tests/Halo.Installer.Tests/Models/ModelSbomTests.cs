using System.Text.Json.Nodes;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Installer.Models;
using Halo.Testing;

namespace Halo.Installer.Tests.Models;

public sealed class ModelSbomTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private (string Dir, ModelManifest Manifest) SynthesizedModel(GgmlType type)
    {
        string dir = Path.Combine(_temp.Path, "tiny");
        Directory.CreateDirectory(dir);
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", type, seed: 4), Path.Combine(dir, "tiny.gguf"));
        ModelManifest manifest = ModelStoreTests.Install(_temp.Path, "tiny", "catalog", ("tiny.gguf", File.ReadAllBytes(Path.Combine(dir, "tiny.gguf"))));
        return (dir, manifest);
    }

    private static Dictionary<string, string> Properties(JsonNode component) =>
        component["properties"]!.AsArray().ToDictionary(p => (string)p!["name"]!, p => (string)p!["value"]!);

    [Fact]
    public void WriteFor_SyntheticGguf_DescribesFormatQuantizationShapesTokenizerAndHashes()
    {
        (string dir, ModelManifest manifest) = SynthesizedModel(GgmlType.TQ2_0);

        SbomResult result = ModelSbom.WriteFor(dir, manifest, ModelFile.Open);

        Assert.Empty(result.Warnings);
        JsonNode bom = JsonNode.Parse(File.ReadAllText(result.Path!))!;
        Assert.Equal("CycloneDX", (string?)bom["bomFormat"]);
        Assert.Equal("1.6", (string?)bom["specVersion"]);
        Assert.StartsWith("urn:uuid:", (string?)bom["serialNumber"]);
        JsonNode model = bom["metadata"]!["component"]!;
        Assert.Equal("machine-learning-model", (string?)model["type"]);
        Assert.Equal("MIT", (string?)model["licenses"]![0]!["license"]!["id"]);
        Assert.Equal("text-generation", (string?)model["modelCard"]!["modelParameters"]!["task"]);
        Assert.Equal(manifest.Files[0].Sha256, (string?)bom["components"]![0]!["hashes"]![0]!["content"]);
        Assert.Equal("SHA-256", (string?)bom["components"]![0]!["hashes"]![0]!["alg"]);
        Assert.Equal("file", (string?)bom["components"]![0]!["type"]);
        Assert.Equal("file:tiny/tiny.gguf", (string?)bom["dependencies"]![0]!["dependsOn"]![0]);

        Dictionary<string, string> properties = Properties(model);
        Assert.Equal("gguf", properties["halo:format"]);
        Assert.Equal("TQ2_0", properties["halo:quantization"]);
        Assert.Equal("true", properties["halo:random_weights"]);
        Assert.Equal("256", properties["halo:config:hidden_size"]);
        Assert.Equal("2", properties["halo:config:layers"]);
        Assert.Equal("TQ2_0 [256, 256] x2", properties["halo:tensor:blk.*.attn_q.weight"]);
        Assert.Equal("TQ2_0 [768, 256] x2", properties["halo:tensor:blk.*.ffn_down.weight"]);
        Assert.StartsWith("F16 [256, ", properties["halo:tensor:token_embd.weight"]);
        Assert.Equal("gpt2", properties["halo:tokenizer:model"]);
        Assert.Equal("catalog:tiny", properties["halo:source"]);
    }

    [Fact]
    public void WriteFor_Tq1Model_ReportsTq1Quantization()
    {
        (string dir, ModelManifest manifest) = SynthesizedModel(GgmlType.TQ1_0);

        SbomResult result = ModelSbom.WriteFor(dir, manifest, ModelFile.Open);

        Assert.Equal("TQ1_0", Properties(JsonNode.Parse(File.ReadAllText(result.Path!))!["metadata"]!["component"]!)["halo:quantization"]);
    }

    [Fact]
    public void WriteFor_UnreadableModel_StillListsFilesAndWarns()
    {
        ModelManifest manifest = ModelStoreTests.Install(_temp.Path, "junk", "computed", ("junk.gguf", "GGUF but not really"u8.ToArray()));

        SbomResult result = ModelSbom.WriteFor(Path.Combine(_temp.Path, "junk"), manifest, ModelFile.Open);

        string warning = Assert.Single(result.Warnings);
        Assert.Contains("could not read the model", warning);
        JsonNode model = JsonNode.Parse(File.ReadAllText(result.Path!))!["metadata"]!["component"]!;
        Assert.Equal(manifest.Files[0].Sha256, (string?)model["hashes"]![0]!["content"]);
        Assert.False(Properties(model).ContainsKey("halo:quantization"));
    }

    [Fact]
    public void WriteFor_SafetensorsDirectory_ReadsTheCheckpointThroughMainDot()
    {
        string dir = Path.Combine(_temp.Path, "hf");
        ModelConfig config = SyntheticModelSpec.PresetConfig("tiny") with { Activation = Activation.Relu2 };
        SyntheticCheckpoint.Write(dir, config, CheckpointForm.Packed, seed: 2);
        var files = Directory.GetFiles(dir).Select(f => (Path.GetFileName(f), File.ReadAllBytes(f))).ToArray();
        ModelManifest manifest = ModelStoreTests.Install(_temp.Path, "hf", "catalog", files) with { Main = ".", Format = "safetensors" };

        SbomResult result = ModelSbom.WriteFor(dir, manifest, ModelFile.Open);

        Assert.Empty(result.Warnings);
        JsonNode bom = JsonNode.Parse(File.ReadAllText(result.Path!))!;
        Dictionary<string, string> properties = Properties(bom["metadata"]!["component"]!);
        Assert.Equal("safetensors", properties["halo:format"]);
        Assert.Equal("relu2", properties["halo:config:activation"]);
        Assert.Equal(files.Length, bom["components"]!.AsArray().Count);
    }

    [Fact]
    public async Task SbomCommand_ToStdout_PrintsTheBom()
    {
        SynthesizedModel(GgmlType.TQ2_0);

        HaloCli.Result result = await HaloCli.RunAsync(null, "models", "sbom", "tiny", "--dir", _temp.Path, "--out", "-");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("1.6", (string?)JsonNode.Parse(result.Stdout)!["specVersion"]);
    }
}
