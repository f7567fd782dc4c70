using Halo.Core.Formats;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

public class ModelFileTests
{
    [Fact]
    public void Open_GgufByContent_IgnoresExtension()
    {
        using var dir = new TempDir();
        string path = GgufTestFiles.WriteSmallModel(dir, "model.bin");

        using IModelSource model = ModelFile.Open(path);

        Assert.Equal("gguf", model.Format);
        Assert.Equal(path, model.Path);
    }

    [Fact]
    public void Open_UnknownContent_SaysUnknownFormat()
    {
        using var dir = new TempDir();
        string path = dir.File("x.gguf");
        File.WriteAllText(path, "hello world, not a model");

        var e = Assert.Throws<InvalidModelException>(() => ModelFile.Open(path));

        Assert.Equal(path, e.File);
        Assert.Contains("unknown model format", e.Message);
    }

    [Fact]
    public void Open_MissingPath_Throws()
    {
        var e = Assert.Throws<InvalidModelException>(() => ModelFile.Open("/nonexistent/halo/model.gguf"));

        Assert.Contains("no such file", e.Message);
    }
}
