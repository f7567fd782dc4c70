using Halo.Installer.Models;
using Halo.Testing;

namespace Halo.Installer.Tests.Models;

public sealed class ModelStoreTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>A model directory as a pull leaves it: files plus a manifest with their real digests.</summary>
    internal static ModelManifest Install(string root, string name, string sha256Source = "catalog", params (string Path, byte[] Content)[] files)
    {
        string dir = Path.Combine(root, name);
        Directory.CreateDirectory(dir);
        var entries = new List<ManifestFile>();
        foreach ((string path, byte[] content) in files)
        {
            File.WriteAllBytes(Path.Combine(dir, path), content);
            entries.Add(new ManifestFile { Path = path, Url = $"http://127.0.0.1/{path}", Size = content.Length, Sha256 = FaultyFileServer.Sha256(content), Sha256Source = sha256Source });
        }

        var manifest = new ModelManifest
        {
            Name = name,
            Source = $"catalog:{name}",
            Format = "gguf",
            Main = files[0].Path,
            License = "MIT",
            PulledAt = DateTimeOffset.UtcNow,
            Files = entries,
        };
        manifest.Write(dir);
        return manifest;
    }

    [Fact]
    public void List_MixedDirectories_ReportsEachStatus()
    {
        Install(_temp.Path, "good", "catalog", ("m.gguf", [1, 2, 3]));
        Install(_temp.Path, "tofu", "computed", ("m.gguf", [4, 5]));
        Install(_temp.Path, "broken", "catalog", ("m.gguf", [6, 7, 8]));
        File.WriteAllBytes(Path.Combine(_temp.Path, "broken", "m.gguf"), [6]);
        Directory.CreateDirectory(Path.Combine(_temp.Path, "half"));
        File.WriteAllText(Path.Combine(_temp.Path, "half", ModelStore.JournalFileName), "{}");

        var models = new ModelStore(_temp.Path).List().ToDictionary(m => m.Name);

        Assert.Equal(ModelStatus.Verified, models["good"].Status);
        Assert.Equal(3, models["good"].Size);
        Assert.Equal(ModelStatus.Unpinned, models["tofu"].Status);
        Assert.Equal(ModelStatus.Damaged, models["broken"].Status);
        Assert.Contains("1 bytes, manifest says 3", models["broken"].Problem);
        Assert.Equal(ModelStatus.Incomplete, models["half"].Status);
        Assert.Equal("pull interrupted", models["half"].Problem);
    }

    [Fact]
    public async Task VerifyAsync_IntactFiles_AllOk()
    {
        Install(_temp.Path, "m", "catalog", ("a.bin", FaultyFileServer.RandomBytes(3000, 1)), ("b.bin", FaultyFileServer.RandomBytes(10, 2)));

        VerifyReport report = await new ModelStore(_temp.Path).VerifyAsync("m", null, CancellationToken.None);

        Assert.True(report.Ok);
        Assert.Equal(2, report.Files.Count);
    }

    [Fact]
    public async Task VerifyAsync_FlippedByteSameSize_ReportsTheSha256Mismatch()
    {
        Install(_temp.Path, "m", "catalog", ("a.bin", FaultyFileServer.RandomBytes(3000, 1)));
        string path = Path.Combine(_temp.Path, "m", "a.bin");
        byte[] bytes = File.ReadAllBytes(path);
        bytes[1234] ^= 1;
        File.WriteAllBytes(path, bytes);

        VerifyReport report = await new ModelStore(_temp.Path).VerifyAsync("m", null, CancellationToken.None);

        Assert.False(report.Ok);
        FileCheck check = Assert.Single(report.Files);
        Assert.Equal("sha256", check.Status);
        Assert.Contains("the manifest says", check.Detail);
    }

    [Fact]
    public async Task VerifyAsync_MissingFile_ReportsMissing()
    {
        Install(_temp.Path, "m", "catalog", ("a.bin", [1]));
        File.Delete(Path.Combine(_temp.Path, "m", "a.bin"));

        VerifyReport report = await new ModelStore(_temp.Path).VerifyAsync("m", null, CancellationToken.None);

        Assert.Equal("missing", Assert.Single(report.Files).Status);
    }

    [Fact]
    public void Remove_ExistingModel_DeletesItsDirectoryOnly()
    {
        Install(_temp.Path, "a", "catalog", ("x.bin", [1]));
        Install(_temp.Path, "b", "catalog", ("x.bin", [2]));

        new ModelStore(_temp.Path).Remove("a");

        Assert.False(Directory.Exists(Path.Combine(_temp.Path, "a")));
        Assert.True(Directory.Exists(Path.Combine(_temp.Path, "b")));
    }

    [Theory]
    [InlineData("../etc")]
    [InlineData("/etc")]
    [InlineData("")]
    [InlineData(".hidden")]
    public void Get_NameThatEscapesTheStore_IsRejected(string name)
    {
        var error = Assert.Throws<ModelStoreException>(() => new ModelStore(_temp.Path).Get(name));

        Assert.Contains("not a valid model name", error.Message);
    }

    [Fact]
    public void Read_MalformedManifest_IsAClearError()
    {
        Directory.CreateDirectory(Path.Combine(_temp.Path, "m"));
        File.WriteAllText(Path.Combine(_temp.Path, "m", ModelManifest.FileName), "{\"schema\": 1, \"files\": 3}");

        InstalledModel model = new ModelStore(_temp.Path).Get("m");

        Assert.Equal(ModelStatus.Damaged, model.Status);
        Assert.Contains("not a valid manifest", model.Problem);
    }

    [Fact]
    public void Write_ThenRead_RoundTripsTheDocumentedShape()
    {
        ModelManifest written = Install(_temp.Path, "m", "server", ("a.bin", [1, 2]));

        string json = File.ReadAllText(Path.Combine(_temp.Path, "m", ModelManifest.FileName));
        ModelManifest read = ModelManifest.Read(Path.Combine(_temp.Path, "m"));

        foreach (string key in new[] { "\"schema\": 1", "\"name\"", "\"source\"", "\"format\"", "\"main\"", "\"license\"", "\"pulled_at\"", "\"files\"", "\"sha256\"", "\"sha256_source\": \"server\"", "\"size\": 2", "\"url\"" })
        {
            Assert.Contains(key, json);
        }

        Assert.Equal(written.Files[0], read.Files[0]);
        Assert.Equal(written.Name, read.Name);
    }
}
