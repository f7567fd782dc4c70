using System.Text.Json;
using System.Text.Json.Serialization;

namespace Halo.Installer.Models;

/// <summary>
/// <c>&lt;models dir&gt;/&lt;name&gt;/manifest.json</c>: what was pulled, from where, and the digest of every file.
/// It is written last and atomically, so a directory with a manifest holds a complete, verified model and a
/// directory without one is an interrupted pull. Other tools (halo doctor, the daemon) read it; the shape:
/// <code>
/// {
///   "schema": 1,
///   "name": "bitnet-b1.58-2b-4t-gguf",
///   "source": "catalog:bitnet-b1.58-2b-4t-gguf",     // or the URL given to pull, or "synth", "convert"
///   "format": "gguf",                                  // gguf | safetensors | h1b | unknown
///   "main": "ggml-model-i2_s.gguf",                    // file (or "." = the directory) to open
///   "license": "MIT",                                  // may be null
///   "description": "...",                              // may be null
///   "pulled_at": "2026-11-25T14:00:00Z",
///   "files": [
///     { "path": "ggml-model-i2_s.gguf", "url": "https://...", "size": 1187801280,
///       "sha256": "64 hex digits", "sha256_source": "catalog" }  // catalog | user | server | computed
///   ]
/// }
/// </code>
/// <c>sha256_source</c> says what the digest was checked against: a pinned value (catalog, user --sha256),
/// the server's own LFS digest (server), or nothing (computed: recorded after download, trust on first use).
/// </summary>
public sealed record ModelManifest
{
    public const string FileName = "manifest.json";

    public const int CurrentSchema = 1;

    [JsonPropertyName("schema")]
    public int Schema { get; init; } = CurrentSchema;

    [JsonPropertyName("name")]
    public required string Name { get; init; }

    [JsonPropertyName("source")]
    public required string Source { get; init; }

    [JsonPropertyName("format")]
    public required string Format { get; init; }

    [JsonPropertyName("main")]
    public required string Main { get; init; }

    [JsonPropertyName("license")]
    public string? License { get; init; }

    [JsonPropertyName("description")]
    public string? Description { get; init; }

    [JsonPropertyName("pulled_at")]
    public required DateTimeOffset PulledAt { get; init; }

    [JsonPropertyName("files")]
    public required IReadOnlyList<ManifestFile> Files { get; init; }

    public long TotalSize
    {
        get
        {
            long total = 0;
            foreach (ManifestFile file in Files)
            {
                total += file.Size;
            }

            return total;
        }
    }

    public static ModelManifest Read(string modelDir)
    {
        string path = Path.Combine(modelDir, FileName);
        ModelManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(File.ReadAllBytes(path), ManifestJson.Default.ModelManifest);
        }
        catch (JsonException ex)
        {
            throw new ModelStoreException($"{path}: not a valid manifest: {ex.Message}", ex);
        }

        if (manifest is null || manifest.Files is null)
        {
            throw new ModelStoreException($"{path}: not a valid manifest: empty");
        }

        if (manifest.Schema != CurrentSchema)
        {
            throw new ModelStoreException($"{path}: manifest schema {manifest.Schema} is not supported (this halo reads {CurrentSchema})");
        }

        foreach (ManifestFile file in manifest.Files)
        {
            if (!Sha256Hex.IsValid(file.Sha256) || file.Size < 0 || !IsPlainRelative(file.Path))
            {
                throw new ModelStoreException($"{path}: file entry '{file.Path}' is malformed");
            }
        }

        return manifest;
    }

    /// <summary>Writes the manifest beside the files, atomically (temp file, fsync, rename, fsync dir).</summary>
    public void Write(string modelDir)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(this, ManifestJson.Default.ModelManifest);
        AtomicFile.Write(Path.Combine(modelDir, FileName), json);
    }

    internal static bool IsPlainRelative(string path) =>
        path.Length > 0 && !path.StartsWith('/') && !path.Split('/').Any(p => p is "" or "." or "..");
}

/// <summary>One file of a model directory as the manifest records it.</summary>
public sealed record ManifestFile
{
    [JsonPropertyName("path")]
    public required string Path { get; init; }

    [JsonPropertyName("url")]
    public string? Url { get; init; }

    [JsonPropertyName("size")]
    public required long Size { get; init; }

    [JsonPropertyName("sha256")]
    public required string Sha256 { get; init; }

    [JsonPropertyName("sha256_source")]
    public required string Sha256Source { get; init; }
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ModelManifest))]
internal sealed partial class ManifestJson : JsonSerializerContext
{
}
