using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Halo.Installer.Models;
using Halo.Testing;

namespace Halo.Installer.Tests.Models;

public sealed class ModelPullerTests : IAsyncLifetime
{
    private static readonly byte[] Weights = FaultyFileServer.RandomBytes(300_000, 11);
    private static readonly byte[] Config = "{\"model_type\": \"bitnet\"}"u8.ToArray();

    private readonly TempDir _temp = new();
    private readonly ConcurrentQueue<string> _log = new();
    private FaultyFileServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await FaultyFileServer.StartAsync();
        _http = HttpDownloader.CreateHttpClient();
        _server.Add("org/tiny/resolve/main/model.safetensors", Weights);
        _server.Add("org/tiny/resolve/main/config.json", Config);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _temp.Dispose();
    }

    private string Catalog(string? weightsSha = null) => $"""
        default: tiny
        models:
          tiny:
            description: test model
            format: safetensors
            license: MIT
            repo: org/tiny
            main: .
            files:
              - path: config.json
              - path: extra.json
                optional: true
              - path: model.safetensors
                size: {Weights.Length}
                sha256: {weightsSha ?? FaultyFileServer.Sha256(Weights)}
        """;

    private ModelPuller Puller(string? catalogYaml = null) => new(
        new ModelStore(_temp.Path),
        ModelCatalog.Parse(catalogYaml ?? Catalog(), "test catalog"),
        new HttpDownloader(_http, new DownloadOptions { PartSize = 64 * 1024, RetryDelay = TimeSpan.FromMilliseconds(5), MaxRetries = 2, Log = _log.Enqueue }),
        _server.BaseUri,
        _log.Enqueue,
        (dir, manifest) => ModelSbom.WriteFor(dir, manifest, open: null));

    private string ModelDir => Path.Combine(_temp.Path, "tiny");

    [Fact]
    public async Task PullAsync_CatalogModel_WritesVerifiedFilesManifestAndSbom()
    {
        PullResult result = await Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None);

        Assert.False(result.AlreadyPresent);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(ModelDir, "model.safetensors")));
        ModelManifest manifest = ModelManifest.Read(ModelDir);
        Assert.Equal("catalog:tiny", manifest.Source);
        Assert.Equal(["config.json", "model.safetensors"], manifest.Files.Select(f => f.Path));
        Assert.Equal("catalog", manifest.Files[1].Sha256Source);
        Assert.Equal("computed", manifest.Files[0].Sha256Source);
        Assert.False(File.Exists(Path.Combine(ModelDir, ModelStore.JournalFileName)));
        JsonNode bom = JsonNode.Parse(File.ReadAllText(result.SbomPath!))!;
        Assert.Equal("1.6", (string?)bom["specVersion"]);
        Assert.Contains(FaultyFileServer.Sha256(Weights), bom.ToJsonString());
        Assert.Equal(ModelStatus.Unpinned, new ModelStore(_temp.Path).Get("tiny").Status);
    }

    [Fact]
    public async Task PullAsync_OptionalFileAbsent_SkipsItWithAWarning()
    {
        await Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None);

        Assert.Contains(_log, line => line.Contains("extra.json: not on the server (optional, skipped)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PullAsync_SecondPull_FetchesNothing()
    {
        await Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None);
        int requests = _server.Requests;

        PullResult again = await Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None);

        Assert.True(again.AlreadyPresent);
        Assert.Equal(requests, _server.Requests);
    }

    [Fact]
    public async Task PullAsync_InterruptedAfterFirstFile_ResumesWithoutFetchingItAgain()
    {
        _server.FaultFor = (_, path, _) => path.EndsWith("model.safetensors", StringComparison.Ordinal) ? Fault.NotFound : Fault.None;
        await Assert.ThrowsAsync<HttpStatusException>(() => Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None));
        Assert.False(File.Exists(Path.Combine(ModelDir, ModelManifest.FileName)));
        Assert.Equal(ModelStatus.Incomplete, new ModelStore(_temp.Path).Get("tiny").Status);

        _server.FaultFor = (_, _, _) => Fault.None;
        var paths = new ConcurrentQueue<string>();
        _server.FaultFor = (_, path, _) =>
        {
            paths.Enqueue(path);
            return Fault.None;
        };
        await Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None);

        Assert.DoesNotContain(paths, p => p.EndsWith("config.json", StringComparison.Ordinal));
        Assert.Equal(2, ModelManifest.Read(ModelDir).Files.Count);
    }

    [Fact]
    public async Task PullAsync_CorruptDownloadOfPinnedFile_NoManifestAndNoFileUnderFinalName()
    {
        _server.FaultFor = (_, path, from) => path.EndsWith("model.safetensors", StringComparison.Ordinal) && from == 65536 ? Fault.WrongBytes : Fault.None;

        await Assert.ThrowsAsync<ChecksumMismatchException>(() => Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None));

        Assert.False(File.Exists(Path.Combine(ModelDir, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(ModelDir, ModelManifest.FileName)));
    }

    [Fact]
    public async Task PullAsync_Url_DerivesTheNameAndChecksTheUserSha()
    {
        Uri url = _server.Add("files/My Model.gguf", Weights);

        PullResult result = await Puller().PullAsync(new PullRequest { Target = url.AbsoluteUri, Sha256 = FaultyFileServer.Sha256(Weights).ToUpperInvariant() }, null, CancellationToken.None);

        Assert.Equal("My-Model", result.Name);
        Assert.Equal("gguf", result.Manifest.Format);
        Assert.Equal("My Model.gguf", result.Manifest.Main);
        Assert.Equal("user", result.Manifest.Files[0].Sha256Source);
    }

    [Fact]
    public async Task PullAsync_UrlWithWrongUserSha_FailsAndLeavesNoModel()
    {
        Uri url = _server.Add("files/m.gguf", Weights);

        await Assert.ThrowsAsync<ChecksumMismatchException>(() =>
            Puller().PullAsync(new PullRequest { Target = url.AbsoluteUri, Sha256 = new string('0', 64) }, null, CancellationToken.None));

        Assert.False(File.Exists(Path.Combine(_temp.Path, "m", "m.gguf")));
        Assert.Equal(ModelStatus.Incomplete, new ModelStore(_temp.Path).Get("m").Status);
    }

    [Fact]
    public async Task PullAsync_NameTakenByAnotherSource_Refuses()
    {
        await Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None);
        Uri url = _server.Add("files/m.gguf", Weights);

        var error = await Assert.ThrowsAsync<ModelStoreException>(() =>
            Puller().PullAsync(new PullRequest { Target = url.AbsoluteUri, Name = "tiny" }, null, CancellationToken.None));

        Assert.Contains("a different model is already installed as 'tiny'", error.Message);
    }

    [Fact]
    public async Task PullAsync_SameModelTwiceAtOnce_SecondIsRefusedWhileTheFirstRuns()
    {
        _server.BytesPerSecond = 200_000;
        using var started = new SemaphoreSlim(0);
        Task<PullResult> first = Puller().PullAsync(new PullRequest { Target = "tiny" },
            new SynchronousProgress<DownloadProgress>(p =>
            {
                if (p.Phase == DownloadPhase.Downloading && p.Bytes > 0 && started.CurrentCount == 0)
                {
                    started.Release();
                }
            }), CancellationToken.None);
        Assert.True(await started.WaitAsync(TimeSpan.FromSeconds(30)), "the first pull never started downloading");

        var error = await Assert.ThrowsAsync<ModelStoreException>(() => Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None));

        Assert.Contains("another `halo models pull` of 'tiny' is running", error.Message);
        _server.BytesPerSecond = 0;
        Assert.False((await first).AlreadyPresent);
    }

    [Fact]
    public async Task PullAsync_UnknownName_ListsTheKnownModels()
    {
        var error = await Assert.ThrowsAsync<ModelStoreException>(() => Puller().PullAsync(new PullRequest { Target = "nope" }, null, CancellationToken.None));

        Assert.Contains("known models: tiny", error.Message);
    }

    [Fact]
    public async Task PullAsync_DamagedFileAfterPull_PullFetchesItAgain()
    {
        await Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None);
        File.WriteAllBytes(Path.Combine(ModelDir, "model.safetensors"), [1, 2, 3]);

        PullResult again = await Puller().PullAsync(new PullRequest { Target = "tiny" }, null, CancellationToken.None);

        Assert.False(again.AlreadyPresent);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(ModelDir, "model.safetensors")));
    }
}
