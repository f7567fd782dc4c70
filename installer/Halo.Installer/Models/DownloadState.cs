using System.Text.Json;
using System.Text.Json.Serialization;

namespace Halo.Installer.Models;

/// <summary>
/// <c>&lt;file&gt;.partial.state</c>: which fixed-size parts of <c>&lt;file&gt;.partial</c> are on disk, and the
/// server's identity of the file (size, ETag, Last-Modified) they were taken from. A part is recorded only
/// after its bytes are flushed to disk, so after a kill every recorded part is good; a resume whose server
/// file no longer matches starts over.
/// </summary>
internal sealed class DownloadState
{
    [JsonPropertyName("url")]
    public required string Url { get; init; }

    [JsonPropertyName("size")]
    public required long Size { get; init; }

    [JsonPropertyName("etag")]
    public string? ETag { get; init; }

    [JsonPropertyName("last_modified")]
    public DateTimeOffset? LastModified { get; init; }

    [JsonPropertyName("part_size")]
    public required long PartSize { get; init; }

    [JsonPropertyName("done")]
    public List<int> Done { get; init; } = [];

    [JsonIgnore]
    public int PartCount => (int)((Size + PartSize - 1) / PartSize);

    public static DownloadState For(Uri url, RemoteFile remote, long partSize) => new()
    {
        Url = url.AbsoluteUri,
        Size = remote.Size!.Value,
        ETag = remote.ETag,
        LastModified = remote.LastModified,
        PartSize = partSize,
    };

    /// <summary>The saved state, or null when there is none or it cannot be read (then the download starts over).</summary>
    public static DownloadState? TryLoad(string path)
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllBytes(path), DownloadStateJson.Default.DownloadState) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Whether parts saved under this state may be reused for <paramref name="fresh"/>.</summary>
    public bool SameSourceAs(DownloadState fresh) =>
        Url == fresh.Url && Size == fresh.Size && PartSize == fresh.PartSize && ETag == fresh.ETag
        && LastModified == fresh.LastModified && Done.TrueForAll(i => i >= 0 && i < PartCount);

    public long BytesDone()
    {
        long total = 0;
        foreach (int part in Done)
        {
            total += PartLength(part);
        }

        return total;
    }

    public long PartStart(int part) => part * PartSize;

    public long PartLength(int part) => Math.Min(PartSize, Size - PartStart(part));

    public void Save(string path) =>
        AtomicFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(this, DownloadStateJson.Default.DownloadState));
}

[JsonSerializable(typeof(DownloadState))]
internal sealed partial class DownloadStateJson : JsonSerializerContext
{
}
