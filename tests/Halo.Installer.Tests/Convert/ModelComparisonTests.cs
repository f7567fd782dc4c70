using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Installer.Convert;
using Halo.Testing;

namespace Halo.Installer.Tests.Convert;

public sealed class ModelComparisonTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private string Synth(string name, GgmlType type, ulong seed)
    {
        string path = _temp.File(name);
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", type, seed), path);
        return path;
    }

    [Fact]
    public void Compare_SameFileReadTwice_FindsNothing()
    {
        string path = Synth("a.gguf", GgmlType.TQ2_0, 1);
        using IModelSource a = ModelFile.Open(path);
        using IModelSource b = ModelFile.Open(path);

        Assert.Empty(ModelComparison.Compare(a, b));
    }

    [Fact]
    public void Compare_DifferentSeeds_NamesTheDifferingTensors()
    {
        using IModelSource a = ModelFile.Open(Synth("a.gguf", GgmlType.TQ2_0, 1));
        using IModelSource b = ModelFile.Open(Synth("b.gguf", GgmlType.TQ2_0, 2));

        IReadOnlyList<string> differences = ModelComparison.Compare(a, b);

        Assert.Contains(differences, d => d.StartsWith("blk.0.attn_q.weight: byte ", StringComparison.Ordinal));
        Assert.Contains(differences, d => d.StartsWith("token_embd.weight: ", StringComparison.Ordinal));
    }

    [Fact]
    public void Compare_OneFlippedWeightByte_IsFound()
    {
        string path = Synth("a.gguf", GgmlType.TQ2_0, 1);
        string copy = _temp.File("copy.gguf");
        File.Copy(path, copy);
        long offset;
        using (IModelSource probe = ModelFile.Open(path))
        {
            offset = File.ReadAllBytes(path).AsSpan().IndexOf(probe.GetTensor("blk.1.ffn_up.weight").Bytes[..64]);
        }

        using (var stream = new FileStream(copy, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Position = offset + 10;
            int value = stream.ReadByte();
            stream.Position = offset + 10;
            stream.WriteByte((byte)(value ^ 0x01));
        }

        using IModelSource a = ModelFile.Open(path);
        using IModelSource b = ModelFile.Open(copy);

        Assert.Equal(["blk.1.ffn_up.weight: byte 10 differs (TQ2_0)"], ModelComparison.Compare(a, b));
    }
}
