namespace Halo.Installer.Models;

/// <summary>The state of one model directory, as <c>halo models list</c> shows it.</summary>
public enum ModelStatus
{
    /// <summary>Complete; every file was checked at pull time against a pinned or server-provided sha256.</summary>
    Verified,

    /// <summary>Complete, but nothing to check against at pull time: the manifest records the computed sha256.</summary>
    Unpinned,

    /// <summary>No manifest: a pull was interrupted (run it again to resume).</summary>
    Incomplete,

    /// <summary>A file the manifest lists is missing or has the wrong size (run verify, then pull again).</summary>
    Damaged,
}

/// <summary>One directory under the models dir.</summary>
public sealed record InstalledModel(string Name, string Directory, ModelStatus Status, ModelManifest? Manifest, string? Problem)
{
    public long Size => Manifest?.TotalSize ?? DirectorySize(Directory);

    public string Format => Manifest?.Format ?? "unknown";

    /// <summary>The path a reader opens: the main file, or the directory for multi-file formats.</summary>
    public string? MainPath => Manifest is null ? null : Manifest.Main == "." ? Directory : System.IO.Path.Combine(Directory, Manifest.Main);

    private static long DirectorySize(string dir)
    {
        long total = 0;
        foreach (FileInfo file in new DirectoryInfo(dir).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            total += file.Length;
        }

        return total;
    }
}

/// <summary>Result of re-hashing one file against the manifest.</summary>
/// <param name="Status">"ok", "missing", "size" or "sha256".</param>
public sealed record FileCheck(string Path, string Status, string Detail);

public sealed record VerifyReport(string Name, IReadOnlyList<FileCheck> Files)
{
    public bool Ok => Files.All(f => f.Status == "ok");
}

/// <summary>
/// The models directory (<c>/var/lib/halo/models</c> by default): one subdirectory per model with its files,
/// <c>manifest.json</c> (see <see cref="ModelManifest"/>) and <c>model.cdx.json</c> (CycloneDX ML-BOM).
/// This is the API that <c>halo doctor</c> and <c>halo provision</c> use too.
/// </summary>
public sealed class ModelStore
{
    /// <summary>Written while a pull runs, listing the files already verified; removed when the manifest lands.</summary>
    internal const string JournalFileName = ".pull-journal.json";

    internal const string LockFileName = ".pull.lock";

    public ModelStore(string root)
    {
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    /// <summary>The directory of a model name (validated so that no name can point outside the store).</summary>
    public string DirectoryOf(string name)
    {
        ModelName.Validate(name);
        return Path.Combine(Root, name);
    }

    public IReadOnlyList<InstalledModel> List()
    {
        var models = new List<InstalledModel>();
        if (!Directory.Exists(Root))
        {
            return models;
        }

        foreach (string dir in Directory.EnumerateDirectories(Root).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(dir);
            if (ModelName.IsValid(name))
            {
                models.Add(Inspect(name, dir));
            }
        }

        return models;
    }

    /// <summary>The model, or null when there is no directory of that name.</summary>
    public InstalledModel? Find(string name)
    {
        string dir = DirectoryOf(name);
        return Directory.Exists(dir) ? Inspect(name, dir) : null;
    }

    public InstalledModel Get(string name) =>
        Find(name) ?? throw new ModelStoreException($"no model named '{name}' in {Root} (see `halo models list`)");

    /// <summary>Re-hashes every file against the manifest. Reads every byte: seconds per GB.</summary>
    public async Task<VerifyReport> VerifyAsync(string name, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        InstalledModel model = Get(name);
        if (model.Manifest is null)
        {
            throw new ModelStoreException($"model '{name}' has no manifest ({model.Problem}); run `halo models pull` again to finish it");
        }

        var checks = new List<FileCheck>();
        foreach (ManifestFile file in model.Manifest.Files)
        {
            string path = Path.Combine(model.Directory, file.Path);
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                checks.Add(new FileCheck(file.Path, "missing", $"{path} is missing"));
                continue;
            }

            if (info.Length != file.Size)
            {
                checks.Add(new FileCheck(file.Path, "size", $"{path} has {info.Length} bytes, the manifest says {file.Size}"));
                continue;
            }

            string actual = await FileHash.Sha256Async(path, progress is null ? null : new SynchronousProgress<long>(bytes =>
                progress.Report(new DownloadProgress(file.Path, DownloadPhase.Verifying, bytes, file.Size))), cancellationToken);
            checks.Add(actual == file.Sha256
                ? new FileCheck(file.Path, "ok", file.Sha256)
                : new FileCheck(file.Path, "sha256", $"{path}: sha256 is {actual}, the manifest says {file.Sha256}"));
        }

        return new VerifyReport(name, checks);
    }

    /// <summary>Deletes the model directory. Refuses names that are not model directories of this store.</summary>
    public void Remove(string name)
    {
        InstalledModel model = Get(name);
        Directory.Delete(model.Directory, recursive: true);
    }

    private static InstalledModel Inspect(string name, string dir)
    {
        if (!File.Exists(Path.Combine(dir, ModelManifest.FileName)))
        {
            string problem = File.Exists(Path.Combine(dir, JournalFileName)) ? "pull interrupted" : "no manifest.json";
            return new InstalledModel(name, dir, ModelStatus.Incomplete, null, problem);
        }

        ModelManifest manifest;
        try
        {
            manifest = ModelManifest.Read(dir);
        }
        catch (ModelStoreException ex)
        {
            return new InstalledModel(name, dir, ModelStatus.Damaged, null, ex.Message);
        }

        foreach (ManifestFile file in manifest.Files)
        {
            var info = new FileInfo(Path.Combine(dir, file.Path));
            if (!info.Exists || info.Length != file.Size)
            {
                string problem = info.Exists ? $"{file.Path}: {info.Length} bytes, manifest says {file.Size}" : $"{file.Path} is missing";
                return new InstalledModel(name, dir, ModelStatus.Damaged, manifest, problem);
            }
        }

        bool pinned = manifest.Files.All(f => f.Sha256Source != "computed");
        return new InstalledModel(name, dir, pinned ? ModelStatus.Verified : ModelStatus.Unpinned, manifest, null);
    }
}

/// <summary>An IProgress that reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool, out of order).</summary>
public sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
