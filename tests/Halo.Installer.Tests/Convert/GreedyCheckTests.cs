using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Installer.Convert;
using Halo.Testing;

namespace Halo.Installer.Tests.Convert;

public sealed class GreedyCheckTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Run_SameModelTwice_SameTokensAndDifferentModelsDiffer()
    {
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, seed: 1), _temp.File("a.gguf"));
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, seed: 2), _temp.File("b.gguf"));
        using IModelSource a = ModelFile.Open(_temp.File("a.gguf"));
        using IModelSource again = ModelFile.Open(_temp.File("a.gguf"));
        using IModelSource b = ModelFile.Open(_temp.File("b.gguf"));

        IReadOnlyList<int> first = GreedyCheck.Run(a, tokens: 8, threads: 1);

        Assert.Equal(8, first.Count);
        Assert.Equal(first, GreedyCheck.Run(again, tokens: 8, threads: 2));
        Assert.NotEqual(first, GreedyCheck.Run(b, tokens: 8, threads: 1));
    }
}
