using System.Reflection;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Halo.Installer.Models;

/// <summary>One downloadable file of a catalog model.</summary>
/// <param name="Path">Path inside the model directory (and inside the hub repository).</param>
/// <param name="Url">Full URL; null means {endpoint}/{repo}/resolve/{revision}/{Path}.</param>
/// <param name="Size">Bytes, when pinned.</param>
/// <param name="Sha256">Lower-case hex, when pinned.</param>
/// <param name="Optional">A 404 for this file is a warning, not a failure.</param>
public sealed record CatalogFile(string Path, string? Url, long? Size, string? Sha256, bool Optional);

/// <summary>A named model of <c>config/models.yaml</c>.</summary>
/// <param name="Main">The file (or "." for the directory) that a reader opens.</param>
public sealed record CatalogModel(
    string Name,
    string Description,
    string Format,
    string? License,
    string? Repo,
    string Revision,
    string Main,
    IReadOnlyList<CatalogFile> Files)
{
    /// <summary>Where a file comes from, with the hub base URL (HALO_MODELS_ENDPOINT) applied.</summary>
    public Uri UrlOf(CatalogFile file, Uri endpoint)
    {
        if (file.Url is not null)
        {
            return new Uri(file.Url);
        }

        string basePath = endpoint.AbsoluteUri.TrimEnd('/');
        return new Uri($"{basePath}/{Repo}/resolve/{Uri.EscapeDataString(Revision)}/{EscapePath(file.Path)}");
    }

    private static string EscapePath(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));
}

/// <summary>
/// The model catalog: names that <c>halo models pull NAME</c> understands, mapped to files, sizes and hashes.
/// Read from HALO_MODELS_CATALOG, else /etc/halo/models.yaml, else the copy of config/models.yaml built into
/// the binary. Unknown keys and malformed entries are errors naming the file and the entry.
/// </summary>
public sealed class ModelCatalog
{
    private const string EmbeddedName = "Halo.Installer.models.yaml";

    private ModelCatalog(string source, string? defaultModel, IReadOnlyDictionary<string, CatalogModel> models)
    {
        Source = source;
        DefaultModel = defaultModel;
        Models = models;
    }

    /// <summary>Where the catalog was read from (a path, or "built-in").</summary>
    public string Source { get; }

    /// <summary>The model `halo provision` pulls first.</summary>
    public string? DefaultModel { get; }

    public IReadOnlyDictionary<string, CatalogModel> Models { get; }

    public bool TryGet(string name, out CatalogModel model) => Models.TryGetValue(name, out model!);

    /// <summary>The catalog in force on this machine (see the class summary for the order).</summary>
    public static ModelCatalog LoadDefault()
    {
        string? overridePath = Environment.GetEnvironmentVariable(ModelsEnvironment.CatalogVariable);
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            return LoadFile(overridePath);
        }

        if (File.Exists(ModelsEnvironment.SystemCatalogPath))
        {
            return LoadFile(ModelsEnvironment.SystemCatalogPath);
        }

        return LoadBuiltIn();
    }

    public static ModelCatalog LoadBuiltIn()
    {
        using Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(EmbeddedName)
            ?? throw new InvalidOperationException($"resource {EmbeddedName} is missing from the build");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), "built-in catalog");
    }

    public static ModelCatalog LoadFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelStoreException($"model catalog {path} does not exist");
        }

        return Parse(File.ReadAllText(path), path);
    }

    public static ModelCatalog Parse(string yaml, string source)
    {
        CatalogDocument document;
        try
        {
            document = Deserializer.Deserialize<CatalogDocument?>(yaml) ?? new CatalogDocument();
        }
        catch (YamlException ex)
        {
            throw new ModelStoreException($"{source}: line {ex.Start.Line}: {ex.InnerException?.Message ?? ex.Message}", ex);
        }

        var models = new Dictionary<string, CatalogModel>(StringComparer.Ordinal);
        foreach ((string name, CatalogModelDocument entry) in document.Models ?? [])
        {
            models[name] = ToModel(source, name, entry);
        }

        if (document.Default is not null && !models.ContainsKey(document.Default))
        {
            throw new ModelStoreException($"{source}: default model '{document.Default}' is not in the catalog");
        }

        return new ModelCatalog(source, document.Default, models);
    }

    private static CatalogModel ToModel(string source, string name, CatalogModelDocument entry)
    {
        string where = $"{source}: model '{name}'";
        ModelName.Validate(name);
        if (entry.Files is null || entry.Files.Count == 0)
        {
            throw new ModelStoreException($"{where}: has no files");
        }

        var files = new List<CatalogFile>();
        foreach (CatalogFileDocument file in entry.Files)
        {
            if (string.IsNullOrWhiteSpace(file.Path) || file.Path.StartsWith('/') || file.Path.Split('/').Any(p => p is "" or "." or ".."))
            {
                throw new ModelStoreException($"{where}: file path '{file.Path}' must be relative and plain");
            }

            if (file.Url is null && entry.Repo is null)
            {
                throw new ModelStoreException($"{where}: file '{file.Path}' needs a url, or the model a repo");
            }

            if (file.Sha256 is not null && !Sha256Hex.IsValid(file.Sha256))
            {
                throw new ModelStoreException($"{where}: file '{file.Path}' sha256 must be 64 hex digits");
            }

            if (file.Size is < 0)
            {
                throw new ModelStoreException($"{where}: file '{file.Path}' size must not be negative");
            }

            files.Add(new CatalogFile(file.Path, file.Url, file.Size, file.Sha256?.ToLowerInvariant(), file.Optional));
        }

        string main = entry.Main ?? files[0].Path;
        if (main != "." && !files.Any(f => f.Path == main))
        {
            throw new ModelStoreException($"{where}: main '{main}' is not one of its files (or '.')");
        }

        return new CatalogModel(name, entry.Description ?? "", entry.Format ?? "unknown", entry.License, entry.Repo,
            entry.Revision ?? "main", main, files);
    }

    private static readonly IDeserializer Deserializer = new DeserializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .Build();

    private sealed class CatalogDocument
    {
        public string? Default { get; set; }

        public Dictionary<string, CatalogModelDocument>? Models { get; set; }
    }

    private sealed class CatalogModelDocument
    {
        public string? Description { get; set; }

        public string? Format { get; set; }

        public string? License { get; set; }

        public string? Repo { get; set; }

        public string? Revision { get; set; }

        public string? Main { get; set; }

        public List<CatalogFileDocument>? Files { get; set; }
    }

    private sealed class CatalogFileDocument
    {
        public string Path { get; set; } = "";

        public string? Url { get; set; }

        public long? Size { get; set; }

        public string? Sha256 { get; set; }

        public bool Optional { get; set; }
    }
}
