using Halo.Installer.Models;
using Halo.Testing;

namespace Halo.Installer.Tests.Models;

public sealed class ModelCatalogTests
{
    [Fact]
    public void LoadBuiltIn_RepoCatalog_HasTheBitNet2B4TModelsAndAValidDefault()
    {
        ModelCatalog catalog = ModelCatalog.LoadBuiltIn();

        Assert.True(catalog.TryGet("bitnet-b1.58-2b-4t-gguf", out CatalogModel gguf));
        Assert.Equal("microsoft/bitnet-b1.58-2B-4T-gguf", gguf.Repo);
        Assert.Equal("ggml-model-i2_s.gguf", gguf.Main);
        Assert.True(catalog.TryGet("bitnet-b1.58-2b-4t", out CatalogModel packed));
        Assert.Contains(packed.Files, f => f.Path == "model.safetensors" && !f.Optional);
        Assert.True(catalog.TryGet("bitnet-b1.58-2b-4t-bf16", out _));
        Assert.Equal("bitnet-b1.58-2b-4t-gguf", catalog.DefaultModel);
    }

    [Fact]
    public void LoadBuiltIn_IsTheRepositoryFile()
    {
        ModelCatalog fromRepo = ModelCatalog.LoadFile(Path.Combine(TestPaths.RepoRoot, "config", "models.yaml"));

        Assert.Equal(fromRepo.Models.Keys.Order(), ModelCatalog.LoadBuiltIn().Models.Keys.Order());
    }

    [Fact]
    public void UrlOf_WithMirrorEndpoint_ReplacesTheHubBase()
    {
        ModelCatalog.LoadBuiltIn().TryGet("bitnet-b1.58-2b-4t-gguf", out CatalogModel model);

        Uri url = model.UrlOf(model.Files[0], new Uri("http://127.0.0.1:9999/mirror/"));

        Assert.Equal("http://127.0.0.1:9999/mirror/microsoft/bitnet-b1.58-2B-4T-gguf/resolve/main/ggml-model-i2_s.gguf", url.AbsoluteUri);
    }

    [Fact]
    public void Parse_UnknownKey_IsAnErrorNamingTheLine()
    {
        const string yaml = "models:\n  a:\n    repo: x/y\n    colour: blue\n    files:\n      - path: f.gguf\n";

        var error = Assert.Throws<ModelStoreException>(() => ModelCatalog.Parse(yaml, "test.yaml"));

        Assert.Contains("test.yaml: line 4", error.Message);
    }

    [Theory]
    [InlineData("models:\n  a:\n    repo: x/y\n    files:\n      - path: ../escape\n", "must be relative")]
    [InlineData("models:\n  a:\n    repo: x/y\n    files:\n      - path: f\n        sha256: abc\n", "64 hex digits")]
    [InlineData("models:\n  a:\n    files:\n      - path: f\n", "needs a url")]
    [InlineData("models:\n  a:\n    repo: x/y\n    files: []\n", "has no files")]
    [InlineData("models:\n  ../a:\n    repo: x/y\n    files:\n      - path: f\n", "not a valid model name")]
    [InlineData("default: b\nmodels:\n  a:\n    repo: x/y\n    files:\n      - path: f\n", "default model 'b'")]
    [InlineData("models:\n  a:\n    repo: x/y\n    main: g\n    files:\n      - path: f\n", "main 'g'")]
    public void Parse_BadEntry_IsAClearError(string yaml, string expected)
    {
        var error = Assert.Throws<ModelStoreException>(() => ModelCatalog.Parse(yaml, "test.yaml"));

        Assert.Contains(expected, error.Message);
    }
}
