using System.Text.Json;

namespace Halo.Installer.Models;

/// <summary>What to pull: a catalog name or an http(s) URL of a single model file.</summary>
public sealed record PullRequest
{
    public required string Target { get; init; }

    /// <summary>Local name (default: the catalog name, or the URL's file name without extension).</summary>
    public string? Name { get; init; }

    /// <summary>Pinned digest for a URL pull.</summary>
    public string? Sha256 { get; init; }
}

/// <param name="AlreadyPresent">The model was complete before this pull: nothing was fetched.</param>
/// <param name="SbomPath">The CycloneDX file written beside the model, or null when it could not be made.</param>
public sealed record PullResult(string Name, string Directory, ModelManifest Manifest, bool AlreadyPresent, string? SbomPath, IReadOnlyList<DownloadResult> Downloads);

/// <summary>
/// <c>halo models pull</c> as a library (also used by <c>halo provision</c> for the first model): resolves the
/// target, downloads each file with <see cref="HttpDownloader"/> into the model directory, records each
/// verified file in a journal so a rerun skips it, then writes <c>manifest.json</c> (atomically, last) and the
/// CycloneDX ML-BOM. One pull per model at a time (a lock file); pulling a complete model again is a no-op.
/// </summary>
public sealed class ModelPuller
{
    private readonly ModelStore _store;
    private readonly ModelCatalog _catalog;
    private readonly HttpDownloader _downloader;
    private readonly Uri _endpoint;
    private readonly Action<string>? _log;
    private readonly Func<string, ModelManifest, SbomResult>? _writeSbom;

    /// <param name="writeSbom">Writes the ML-BOM for a finished model directory (see <see cref="ModelSbom.WriteFor"/>).</param>
    public ModelPuller(ModelStore store, ModelCatalog catalog, HttpDownloader downloader, Uri endpoint, Action<string>? log,
        Func<string, ModelManifest, SbomResult>? writeSbom)
    {
        _store = store;
        _catalog = catalog;
        _downloader = downloader;
        _endpoint = endpoint;
        _log = log;
        _writeSbom = writeSbom;
    }

    public async Task<PullResult> PullAsync(PullRequest request, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        PullPlan plan = Resolve(request);
        string dir = _store.DirectoryOf(plan.Name);
        Directory.CreateDirectory(dir);
        using FileStream pullLock = TakeLock(dir, plan.Name);

        if (AlreadyComplete(dir, plan) is { } present)
        {
            return new PullResult(plan.Name, dir, present, true, SbomPathIfPresent(dir), []);
        }

        // From here on the directory is a pull in progress: no manifest until every file is verified.
        File.Delete(Path.Combine(dir, ModelManifest.FileName));
        string journalPath = Path.Combine(dir, ModelStore.JournalFileName);
        Dictionary<string, ManifestFile> journal = ReadJournal(journalPath, plan);
        var downloads = new List<DownloadResult>();
        foreach (PlannedFile file in plan.Files)
        {
            if (journal.ContainsKey(file.Path))
            {
                continue;
            }

            string destination = Path.Combine(dir, file.Path);
            DownloadResult result;
            try
            {
                result = await _downloader.DownloadAsync(new DownloadRequest
                {
                    Source = file.Url,
                    Destination = destination,
                    ExpectedSize = file.Size,
                    ExpectedSha256 = file.Sha256,
                    ExpectedSha256Source = file.Sha256Source,
                }, progress, cancellationToken);
            }
            catch (HttpStatusException ex) when (file.Optional && ex.Status is 404 or 410)
            {
                _log?.Invoke($"{file.Path}: not on the server (optional, skipped)");
                continue;
            }

            downloads.Add(result);
            journal[file.Path] = new ManifestFile
            {
                Path = file.Path,
                Url = file.Url.AbsoluteUri,
                Size = result.Size,
                Sha256 = result.Sha256,
                Sha256Source = result.Sha256Source,
            };
            WriteJournal(journalPath, plan, journal);
        }

        var manifest = new ModelManifest
        {
            Name = plan.Name,
            Source = plan.Source,
            Format = plan.Format,
            Main = plan.Main,
            License = plan.License,
            Description = plan.Description,
            PulledAt = DateTimeOffset.UtcNow,
            Files = plan.Files.Where(f => journal.ContainsKey(f.Path)).Select(f => journal[f.Path]).ToList(),
        };
        manifest.Write(dir);
        File.Delete(journalPath);

        string? sbomPath = null;
        if (_writeSbom is not null)
        {
            SbomResult sbom = _writeSbom(dir, manifest);
            sbomPath = sbom.Path;
            foreach (string warning in sbom.Warnings)
            {
                _log?.Invoke(warning);
            }
        }

        return new PullResult(plan.Name, dir, manifest, false, sbomPath, downloads);
    }

    /// <summary>Turns a catalog name or URL into the list of files to fetch.</summary>
    internal PullPlan Resolve(PullRequest request)
    {
        string? pinned = null;
        if (request.Sha256 is not null)
        {
            pinned = Sha256Hex.Parse(request.Sha256) ?? throw new ModelStoreException($"--sha256 '{request.Sha256}' is not 64 hex digits");
        }

        if (Uri.TryCreate(request.Target, UriKind.Absolute, out Uri? url) && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps))
        {
            string name = request.Name ?? ModelName.FromUrl(url);
            string fileName = Uri.UnescapeDataString(url.Segments[^1]).Trim('/');
            if (!ManifestFileNameIsPlain(fileName))
            {
                throw new ModelStoreException($"{url} does not end in a file name");
            }

            return new PullPlan(name, url.AbsoluteUri, FormatOf(fileName), fileName, null, null,
                [new PlannedFile(fileName, url, null, pinned, pinned is null ? "computed" : "user", false)]);
        }

        if (!_catalog.TryGet(request.Target, out CatalogModel model))
        {
            throw new ModelStoreException(
                $"'{request.Target}' is neither a model in the catalog ({_catalog.Source}) nor an http(s) URL; known models: {string.Join(", ", _catalog.Models.Keys.Order())}");
        }

        if (pinned is not null)
        {
            throw new ModelStoreException("--sha256 pins a URL pull; catalog models carry their own checksums");
        }

        var files = model.Files
            .Select(f => new PlannedFile(f.Path, model.UrlOf(f, _endpoint), f.Size, f.Sha256, "catalog", f.Optional))
            .ToList();
        return new PullPlan(request.Name ?? model.Name, $"catalog:{model.Name}", model.Format, model.Main, model.License, model.Description, files);
    }

    private static bool ManifestFileNameIsPlain(string fileName) =>
        fileName.Length > 0 && fileName != ModelManifest.FileName && ModelManifest.IsPlainRelative(fileName) && !fileName.Contains('/');

    private static string FormatOf(string fileName) => Path.GetExtension(fileName).ToLowerInvariant() switch
    {
        ".gguf" => "gguf",
        ".h1b" => "h1b",
        ".safetensors" => "safetensors",
        _ => "unknown",
    };

    private static FileStream TakeLock(string dir, string name)
    {
        try
        {
            // FileShare.None is an exclusive flock on Unix: released by the kernel even after kill -9.
            return new FileStream(Path.Combine(dir, ModelStore.LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (IOException ex) when (!DiskFullException.Is(ex))
        {
            throw new ModelStoreException($"another `halo models pull` of '{name}' is running (lock {Path.Combine(dir, ModelStore.LockFileName)})", ex);
        }
    }

    /// <summary>The manifest of an earlier, complete pull of the same source whose files are all in place.</summary>
    private ModelManifest? AlreadyComplete(string dir, PullPlan plan)
    {
        if (!File.Exists(Path.Combine(dir, ModelManifest.FileName)))
        {
            return null;
        }

        ModelManifest manifest;
        try
        {
            manifest = ModelManifest.Read(dir);
        }
        catch (ModelStoreException ex)
        {
            _log?.Invoke($"{ex.Message}; pulling again");
            return null;
        }

        if (manifest.Source != plan.Source)
        {
            throw new ModelStoreException(
                $"a different model is already installed as '{plan.Name}' (from {manifest.Source}); choose another --name or `halo models rm {plan.Name}` first");
        }

        foreach (ManifestFile file in manifest.Files)
        {
            var info = new FileInfo(Path.Combine(dir, file.Path));
            if (!info.Exists || info.Length != file.Size)
            {
                _log?.Invoke($"{file.Path} is missing or has the wrong size; pulling again");
                return null;
            }
        }

        return manifest;
    }

    private static string? SbomPathIfPresent(string dir)
    {
        string path = Path.Combine(dir, ModelSbom.FileName);
        return File.Exists(path) ? path : null;
    }

    /// <summary>Files an earlier, interrupted pull already verified and renamed into place (same source and size).</summary>
    private Dictionary<string, ManifestFile> ReadJournal(string path, PullPlan plan)
    {
        var done = new Dictionary<string, ManifestFile>(StringComparer.Ordinal);
        if (!File.Exists(path))
        {
            return done;
        }

        try
        {
            ModelManifest? journal = JsonSerializer.Deserialize(File.ReadAllBytes(path), ManifestJson.Default.ModelManifest);
            if (journal is null || journal.Source != plan.Source)
            {
                return done;
            }

            foreach (ManifestFile file in journal.Files)
            {
                PlannedFile? planned = plan.Files.FirstOrDefault(f => f.Path == file.Path);
                var info = new FileInfo(Path.Combine(Path.GetDirectoryName(path)!, file.Path));
                if (planned is not null && info.Exists && info.Length == file.Size && (planned.Sha256 is null || planned.Sha256 == file.Sha256))
                {
                    done[file.Path] = file;
                }
            }
        }
        catch (JsonException)
        {
            _log?.Invoke($"{path} is unreadable; fetching every file again");
        }

        return done;
    }

    private static void WriteJournal(string path, PullPlan plan, Dictionary<string, ManifestFile> done)
    {
        var journal = new ModelManifest
        {
            Name = plan.Name,
            Source = plan.Source,
            Format = plan.Format,
            Main = plan.Main,
            PulledAt = DateTimeOffset.UtcNow,
            Files = done.Values.ToList(),
        };
        AtomicFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(journal, ManifestJson.Default.ModelManifest));
    }

    internal sealed record PlannedFile(string Path, Uri Url, long? Size, string? Sha256, string Sha256Source, bool Optional);

    internal sealed record PullPlan(string Name, string Source, string Format, string Main, string? License, string? Description, IReadOnlyList<PlannedFile> Files);
}
