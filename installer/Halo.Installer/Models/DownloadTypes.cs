namespace Halo.Installer.Models;

/// <summary>How <see cref="HttpDownloader"/> splits, retries and times out. Defaults suit a 1-5 GB model on a WAN.</summary>
public sealed record DownloadOptions
{
    /// <summary>Range requests in flight at once.</summary>
    public int Parallelism { get; init; } = 4;

    /// <summary>Bytes per range part; the unit of resume (a kill loses at most the parts in flight).</summary>
    public long PartSize { get; init; } = 16L << 20;

    /// <summary>Retries per request after the first attempt (exponential backoff with jitter).</summary>
    public int MaxRetries { get; init; } = 6;

    /// <summary>First backoff delay; it doubles each retry, capped at <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A request that receives no byte for this long is abandoned and retried.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Minimum time between two progress reports while bytes flow.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Warnings and retry notices, one line each (the CLI prints them to stderr).</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>One file to fetch.</summary>
public sealed record DownloadRequest
{
    public required Uri Source { get; init; }

    /// <summary>Final path; the bytes go to <c>Destination + ".partial"</c> until verified.</summary>
    public required string Destination { get; init; }

    public long? ExpectedSize { get; init; }

    /// <summary>Lower-case hex; null means take the server's LFS digest if it sends one, else record the computed one.</summary>
    public string? ExpectedSha256 { get; init; }

    /// <summary>Where <see cref="ExpectedSha256"/> came from ("catalog", "user"), recorded in the manifest.</summary>
    public string ExpectedSha256Source { get; init; } = "catalog";
}

public enum DownloadPhase
{
    Connecting,
    Downloading,
    Verifying,
    Done,
}

/// <summary>A progress sample: bytes are downloaded (or hashed, in <see cref="DownloadPhase.Verifying"/>) so far.</summary>
public readonly record struct DownloadProgress(string File, DownloadPhase Phase, long Bytes, long? Total);

/// <param name="Sha256Source">"catalog"/"user" (checked against a pin), "server" (against the server's LFS digest) or "computed".</param>
/// <param name="ResumedBytes">Bytes reused from an earlier, interrupted run.</param>
/// <param name="Parts">Range parts the file was fetched in; 0 means one plain stream (server without ranges).</param>
public sealed record DownloadResult(string Path, long Size, string Sha256, string Sha256Source, long ResumedBytes, int Parts);

/// <summary>A download that cannot succeed by retrying: the message says what happened and what to do.</summary>
public class DownloadException : ModelStoreException
{
    public DownloadException(string message)
        : base(message)
    {
    }

    public DownloadException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

/// <summary>An HTTP error status; 408, 429 and 5xx are transient (retried), the rest are final.</summary>
public sealed class HttpStatusException : DownloadException
{
    public HttpStatusException(Uri url, int status, string? reason)
        : base($"{url}: HTTP {status} {reason}{Hint(status)}")
    {
        Status = status;
    }

    public int Status { get; }

    public bool Transient => Status is 408 or 429 or >= 500;

    private static string Hint(int status) => status switch
    {
        404 or 410 => " (no such file: check the model name, the URL or HALO_MODELS_ENDPOINT)",
        401 or 403 => " (access denied: a gated or private repository, or an expired link)",
        _ => "",
    };
}

/// <summary>The bytes on disk do not hash to what was expected; nothing was left under the final name.</summary>
public sealed class ChecksumMismatchException : DownloadException
{
    public ChecksumMismatchException(string message)
        : base(message)
    {
    }
}

/// <summary>The file system ran out of space.</summary>
public sealed class DiskFullException : DownloadException
{
    public DiskFullException(string message, Exception? inner = null)
        : base(message, inner ?? new IOException(message))
    {
    }

    /// <summary>ENOSPC / EDQUOT on Unix, ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL on Windows.</summary>
    public static bool Is(Exception ex) =>
        ex is DiskFullException
        || (ex is IOException io && (io.HResult is 28 or 122 or unchecked((int)0x80070070) or unchecked((int)0x80070027)
                                     || io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase)
                                     || io.Message.Contains("disk was full", StringComparison.OrdinalIgnoreCase)));
}
