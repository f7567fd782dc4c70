using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Polly;
using Polly.Retry;

namespace Halo.Installer.Models;

/// <summary>What a probe learned about a remote file.</summary>
/// <param name="Size">Bytes, when the server said (Content-Range total or Content-Length).</param>
/// <param name="AcceptsRanges">The server answered a range request with 206 and a matching Content-Range.</param>
/// <param name="LinkedSha256">Hugging Face's LFS digest (X-Linked-Etag), when a hop of the redirect chain sent it.</param>
internal sealed record RemoteFile(long? Size, bool AcceptsRanges, string? ETag, DateTimeOffset? LastModified, string? LinkedSha256);

/// <summary>
/// Downloads one file over HTTP(S) so that the final name only ever holds verified bytes:
/// <list type="number">
/// <item>probe with <c>Range: bytes=0-0</c> (following redirects by hand, to see Hugging Face's LFS digest);</item>
/// <item>if ranges work: preallocate <c>FILE.partial</c>, fetch fixed-size parts in parallel, and after each part
///   flush it to disk and record it in <c>FILE.partial.state</c>, so that a killed run resumes where it was;</item>
/// <item>otherwise: one stream, restarted from byte 0 on any failure;</item>
/// <item>sha256 over the whole file, compare with the expected digest, flush, rename to FILE, flush the directory.</item>
/// </list>
/// Every request runs in a Polly retry pipeline (exponential backoff, jitter) that retries network errors,
/// stalls, 408/429/5xx and short bodies; 4xx, checksum mismatches and a full disk fail at once with one
/// clear message. A bad download removes its partial file; an interrupted one keeps it for the next run.
/// </summary>
public sealed class HttpDownloader
{
    private const int BufferSize = 1 << 20;
    private const int MaxRedirects = 10;

    private readonly HttpClient _http;
    private readonly DownloadOptions _options;
    private readonly ResiliencePipeline _retry;

    public HttpDownloader(HttpClient http, DownloadOptions? options = null)
    {
        _http = http;
        _options = options ?? new DownloadOptions();
        if (_options.Parallelism < 1 || _options.PartSize < 1 || _options.MaxRetries < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "parallelism and part size must be positive, retries not negative");
        }

        _retry = _options.MaxRetries == 0 ? ResiliencePipeline.Empty : new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } ex && IsTransient(ex)),
                MaxRetryAttempts = _options.MaxRetries,
                Delay = _options.RetryDelay,
                MaxDelay = _options.MaxRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                OnRetry = args =>
                {
                    _options.Log?.Invoke($"retry {args.AttemptNumber + 1}/{_options.MaxRetries} in {args.RetryDelay.TotalSeconds:0.0}s: {args.Outcome.Exception?.Message}");
                    return default;
                },
            })
            .Build();
    }

    /// <summary>An HttpClient fit for downloads: no automatic redirects (we follow them), no decompression
    /// (ranges address the stored bytes), no overall timeout (stalls are detected per read).</summary>
    public static HttpClient CreateHttpClient()
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("halo", typeof(HttpDownloader).Assembly.GetName().Version?.ToString(3) ?? "0"));
        return client;
    }

    public static string PartialPath(string destination) => destination + ".partial";

    public static string StatePath(string destination) => destination + ".partial.state";

    public async Task<DownloadResult> DownloadAsync(DownloadRequest request, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        string destination = Path.GetFullPath(request.Destination);
        string partial = PartialPath(destination);
        string statePath = StatePath(destination);
        Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
        var reporter = new ProgressReporter(Path.GetFileName(destination), progress, _options.ProgressInterval);

        try
        {
            return await DownloadCoreAsync(request, destination, partial, statePath, reporter, cancellationToken);
        }
        catch (Exception ex)
        {
            // A partial file without its state cannot be resumed: remove it rather than leave litter.
            bool resumable = File.Exists(statePath);
            if (!resumable)
            {
                DeletePartial(partial, statePath);
            }

            if (DiskFullException.Is(ex) && ex is not DiskFullException)
            {
                throw new DiskFullException(
                    $"no space left on the device holding {Path.GetDirectoryName(destination)} while writing {Path.GetFileName(destination)} "
                    + (resumable ? $"(the parts already fetched are kept in {partial}: free some space and run again to resume)" : "(the partial download was removed)"),
                    ex);
            }

            if (ex is HttpRequestException or IOException or TimeoutException)
            {
                throw new DownloadException(
                    $"{request.Source}: {ex.Message} (gave up after {_options.MaxRetries} retries{(resumable ? "; run again to resume" : "")})", ex);
            }

            throw;
        }
    }

    private async Task<DownloadResult> DownloadCoreAsync(DownloadRequest request, string destination, string partial, string statePath,
        ProgressReporter reporter, CancellationToken cancellationToken)
    {
        reporter.Phase(DownloadPhase.Connecting, 0, request.ExpectedSize);
        RemoteFile remote = await _retry.ExecuteAsync(ct => ProbeAsync(request.Source, ct), cancellationToken);
        CheckSize(request, remote);
        (string? expectedSha, string shaSource) = ExpectedDigest(request, remote);

        Fetched fetched;
        if (remote.AcceptsRanges && remote.Size > 0)
        {
            try
            {
                fetched = await FetchInPartsAsync(request.Source, remote, partial, statePath, reporter, cancellationToken);
            }
            catch (RangesNotHonouredException ex)
            {
                _options.Log?.Invoke($"{request.Source}: {ex.Message}; downloading as one stream from the start");
                DeletePartial(partial, statePath);
                fetched = await FetchSingleStreamAsync(request.Source, remote.Size, partial, reporter, cancellationToken);
            }
        }
        else
        {
            DeletePartial(partial, statePath);
            fetched = await FetchSingleStreamAsync(request.Source, remote.Size, partial, reporter, cancellationToken);
        }

        if (request.ExpectedSize is { } size && fetched.Size != size)
        {
            DeletePartial(partial, statePath);
            throw new ChecksumMismatchException($"{request.Source}: got {fetched.Size} bytes, expected {size}; the partial download was removed");
        }

        if (expectedSha is not null && fetched.Sha256 != expectedSha)
        {
            DeletePartial(partial, statePath);
            throw new ChecksumMismatchException(
                $"{request.Source}: sha256 mismatch: expected {expectedSha} ({shaSource}), got {fetched.Sha256}; the download is corrupt or the file changed upstream, and was removed");
        }

        if (expectedSha is null)
        {
            _options.Log?.Invoke($"{Path.GetFileName(destination)}: no checksum to verify against; recorded the computed sha256 {fetched.Sha256} (pass --sha256 to pin it)");
        }

        AtomicFile.Publish(partial, destination);
        File.Delete(statePath);
        reporter.Phase(DownloadPhase.Done, fetched.Size, fetched.Size);
        return new DownloadResult(destination, fetched.Size, fetched.Sha256, expectedSha is null ? "computed" : shaSource, fetched.ResumedBytes, fetched.Parts);
    }

    private static void CheckSize(DownloadRequest request, RemoteFile remote)
    {
        if (request.ExpectedSize is { } expected && remote.Size is { } actual && expected != actual)
        {
            throw new DownloadException($"{request.Source}: the server has {actual} bytes but {expected} were expected; the file changed upstream or the pin is wrong");
        }
    }

    private (string? Sha, string Source) ExpectedDigest(DownloadRequest request, RemoteFile remote)
    {
        string? pinned = Sha256Hex.Parse(request.ExpectedSha256);
        if (pinned is not null && remote.LinkedSha256 is { } linked && linked != pinned)
        {
            throw new ChecksumMismatchException(
                $"{request.Source}: the server says the file's sha256 is {linked}, but {pinned} ({request.ExpectedSha256Source}) was expected; not downloading");
        }

        if (pinned is not null)
        {
            return (pinned, request.ExpectedSha256Source);
        }

        return remote.LinkedSha256 is { } serverSha ? (serverSha, "server") : (null, "computed");
    }

    private async ValueTask<RemoteFile> ProbeAsync(Uri source, CancellationToken cancellationToken)
    {
        using var stall = new StallGuard(_options.StallTimeout, cancellationToken);
        try
        {
            Hop hop = await SendAsync(source, new RangeHeaderValue(0, 0), null, stall.Token);
            using HttpResponseMessage response = hop.Response;
            HttpContentHeaders content = response.Content.Headers;
            string? etag = response.Headers.ETag is { IsWeak: false } strong ? strong.Tag : null;
            if (response.StatusCode == HttpStatusCode.PartialContent
                && content.ContentRange is { HasRange: true, From: 0, To: 0, Length: { } total })
            {
                return new RemoteFile(total, true, etag, content.LastModified, hop.LinkedSha256);
            }

            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && content.ContentRange?.Length == 0)
            {
                return new RemoteFile(0, false, etag, content.LastModified, hop.LinkedSha256);
            }

            EnsureSuccess(source, response);
            return new RemoteFile(content.ContentLength ?? hop.LinkedSize, false, etag, content.LastModified, hop.LinkedSha256);
        }
        catch (OperationCanceledException) when (stall.Stalled)
        {
            throw new TimeoutException($"no answer from the server in {_options.StallTimeout.TotalSeconds:0}s");
        }
    }

    private async Task<Fetched> FetchInPartsAsync(Uri source, RemoteFile remote, string partial, string statePath, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        DownloadState fresh = DownloadState.For(source, remote, _options.PartSize);
        DownloadState? saved = DownloadState.TryLoad(statePath);
        bool resume = saved is not null && saved.SameSourceAs(fresh) && File.Exists(partial) && new FileInfo(partial).Length == fresh.Size;
        if (saved is not null && !resume)
        {
            _options.Log?.Invoke($"{Path.GetFileName(partial)}: the saved partial download does not match the server's file any more; starting over");
        }

        DownloadState state = resume ? saved! : fresh;
        long resumedBytes = resume ? state.BytesDone() : 0;
        SafeFileHandle handle;
        if (resume)
        {
            handle = File.OpenHandle(partial, FileMode.Open, FileAccess.ReadWrite);
            _options.Log?.Invoke($"{Path.GetFileName(partial)}: resuming, {state.Done.Count} of {state.PartCount} parts ({resumedBytes} bytes) already on disk");
        }
        else
        {
            DeletePartial(partial, statePath);
            handle = CreatePreallocated(partial, state.Size);
            state.Save(statePath);
        }

        using (handle)
        {
            reporter.Phase(DownloadPhase.Downloading, resumedBytes, state.Size);
            var pending = new List<int>();
            var done = new HashSet<int>(state.Done);
            for (int part = 0; part < state.PartCount; part++)
            {
                if (!done.Contains(part))
                {
                    pending.Add(part);
                }
            }

            await RunPartsAsync(source, remote, state, handle, statePath, pending, reporter, cancellationToken);

            reporter.Phase(DownloadPhase.Verifying, 0, state.Size);
            string sha = await HashHandleAsync(handle, state.Size, reporter, cancellationToken);
            return new Fetched(state.Size, sha, resumedBytes, state.PartCount);
        }
    }

    /// <summary>Parallel workers take parts off a shared counter; the first final failure stops them all.</summary>
    private async Task RunPartsAsync(Uri source, RemoteFile remote, DownloadState state, SafeFileHandle handle, string statePath,
        List<int> pending, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        using var failFast = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var checkpoint = new SemaphoreSlim(1, 1);
        int next = -1;
        Exception? firstFailure = null;

        async Task WorkerAsync()
        {
            try
            {
                int index;
                while ((index = Interlocked.Increment(ref next)) < pending.Count)
                {
                    int part = pending[index];
                    await _retry.ExecuteAsync(
                        ct => FetchPartAsync(source, remote, handle, state.PartStart(part), state.PartLength(part), reporter, ct),
                        failFast.Token);
                    await checkpoint.WaitAsync(failFast.Token);
                    try
                    {
                        // The part's bytes reach the disk before the state that vouches for them.
                        RandomAccess.FlushToDisk(handle);
                        state.Done.Add(part);
                        state.Save(statePath);
                    }
                    finally
                    {
                        checkpoint.Release();
                    }
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !failFast.IsCancellationRequested || cancellationToken.IsCancellationRequested)
            {
                Interlocked.CompareExchange(ref firstFailure, ex, null);
                await failFast.CancelAsync();
            }
            catch (OperationCanceledException)
            {
                // Another worker failed first and cancelled this one; its exception is the one reported.
            }
        }

        int workers = Math.Min(_options.Parallelism, pending.Count);
        var tasks = new Task[workers];
        for (int i = 0; i < workers; i++)
        {
            tasks[i] = Task.Run(WorkerAsync, CancellationToken.None);
        }

        await Task.WhenAll(tasks);
        if (firstFailure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(firstFailure);
        }
    }

    private async ValueTask FetchPartAsync(Uri source, RemoteFile remote, SafeFileHandle handle, long start, long length, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        long end = start + length - 1;
        long written = 0;
        using var stall = new StallGuard(_options.StallTimeout, cancellationToken);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            Hop hop = await SendAsync(source, new RangeHeaderValue(start, end), IfRange(remote), stall.Token);
            using HttpResponseMessage response = hop.Response;
            if (response.StatusCode == HttpStatusCode.OK)
            {
                throw new RangesNotHonouredException("the server answered a range request with the whole file (it ignores ranges, or the file changed)");
            }

            EnsureSuccess(source, response);
            if (response.Content.Headers.ContentRange is not { From: { } from, To: { } to } range || from != start || to != end)
            {
                throw new IOException($"asked for bytes {start}-{end}, the server sent {response.Content.Headers.ContentRange?.ToString() ?? "no Content-Range"}");
            }

            if (range.Length is { } total && total != remote.Size)
            {
                throw new DownloadException($"{source}: the file changed on the server during the download ({remote.Size} -> {total} bytes); run again");
            }

            await using Stream body = await response.Content.ReadAsStreamAsync(stall.Token);
            while (written < length)
            {
                stall.Restart();
                int read = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(BufferSize, length - written)), stall.Token);
                if (read == 0)
                {
                    throw new IOException($"connection closed after {written} of {length} bytes of the part at {start}");
                }

                await RandomAccess.WriteAsync(handle, buffer.AsMemory(0, read), start + written, cancellationToken);
                written += read;
                reporter.Add(read);
            }
        }
        catch (OperationCanceledException) when (stall.Stalled)
        {
            reporter.Add(-written);
            throw new TimeoutException($"no data for {_options.StallTimeout.TotalSeconds:0}s in the part at {start}");
        }
        catch
        {
            reporter.Add(-written);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>One plain GET into the partial file, hashing as it goes; any failure restarts from byte 0.</summary>
    private async Task<Fetched> FetchSingleStreamAsync(Uri source, long? expectedLength, string partial, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        return await _retry.ExecuteAsync(async ct =>
        {
            reporter.Phase(DownloadPhase.Downloading, 0, expectedLength);
            using var stall = new StallGuard(_options.StallTimeout, ct);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            long written = 0;
            try
            {
                Hop hop = await SendAsync(source, null, null, stall.Token);
                using HttpResponseMessage response = hop.Response;
                EnsureSuccess(source, response);
                long? length = response.Content.Headers.ContentLength;
                using SafeFileHandle handle = length is > 0 ? CreatePreallocated(partial, length.Value) : File.OpenHandle(partial, FileMode.Create, FileAccess.ReadWrite);
                reporter.Phase(DownloadPhase.Downloading, 0, length ?? expectedLength);
                await using Stream body = await response.Content.ReadAsStreamAsync(stall.Token);
                while (true)
                {
                    stall.Restart();
                    int read = await body.ReadAsync(buffer.AsMemory(0, BufferSize), stall.Token);
                    if (read == 0)
                    {
                        break;
                    }

                    await RandomAccess.WriteAsync(handle, buffer.AsMemory(0, read), written, ct);
                    hash.AppendData(buffer, 0, read);
                    written += read;
                    reporter.Add(read);
                }

                if (length is { } announced && written != announced)
                {
                    throw new IOException($"connection closed after {written} of {announced} bytes");
                }

                RandomAccess.FlushToDisk(handle);
                return new Fetched(written, System.Convert.ToHexStringLower(hash.GetHashAndReset()), 0, 0);
            }
            catch (OperationCanceledException) when (stall.Stalled)
            {
                throw new TimeoutException($"no data for {_options.StallTimeout.TotalSeconds:0}s after {written} bytes");
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }, cancellationToken);
    }

    private static async Task<string> HashHandleAsync(SafeFileHandle handle, long size, ProgressReporter reporter, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            long offset = 0;
            while (offset < size)
            {
                int read = await RandomAccess.ReadAsync(handle, buffer.AsMemory(0, (int)Math.Min(BufferSize, size - offset)), offset, cancellationToken);
                if (read == 0)
                {
                    throw new IOException($"the partial file ended at {offset} of {size} bytes");
                }

                hash.AppendData(buffer, 0, read);
                offset += read;
                reporter.Add(read);
            }

            return System.Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Creates the file with all its blocks reserved up front, so a full disk fails here and not at 97%.</summary>
    private static SafeFileHandle CreatePreallocated(string path, long size)
    {
        SafeFileHandle handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None, FileOptions.None, preallocationSize: size);
        try
        {
            RandomAccess.SetLength(handle, size);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static RangeConditionHeaderValue? IfRange(RemoteFile remote) =>
        remote.ETag is { } etag ? new RangeConditionHeaderValue(new EntityTagHeaderValue(etag))
        : remote.LastModified is { } modified ? new RangeConditionHeaderValue(modified)
        : null;

    /// <summary>GET following up to 10 redirects by hand (never https -> http), noting Hugging Face's X-Linked-* headers.</summary>
    private async Task<Hop> SendAsync(Uri url, RangeHeaderValue? range, RangeConditionHeaderValue? ifRange, CancellationToken cancellationToken)
    {
        string? linkedSha = null;
        long? linkedSize = null;
        Uri current = url;
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, current);
            request.Headers.Range = range;
            request.Headers.IfRange = ifRange;
            HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (response.Headers.TryGetValues("X-Linked-Etag", out IEnumerable<string>? etags))
            {
                linkedSha ??= Sha256Hex.Parse(etags.FirstOrDefault());
            }

            if (response.Headers.TryGetValues("X-Linked-Size", out IEnumerable<string>? sizes) && long.TryParse(sizes.FirstOrDefault(), out long size))
            {
                linkedSize ??= size;
            }

            if ((int)response.StatusCode is 301 or 302 or 303 or 307 or 308 && response.Headers.Location is { } location)
            {
                response.Dispose();
                Uri target = location.IsAbsoluteUri ? location : new Uri(current, location);
                if (hop >= MaxRedirects)
                {
                    throw new DownloadException($"{url}: more than {MaxRedirects} redirects");
                }

                if (current.Scheme == Uri.UriSchemeHttps && target.Scheme != Uri.UriSchemeHttps)
                {
                    throw new DownloadException($"{url}: refusing a redirect from https to {target.Scheme}");
                }

                current = target;
                continue;
            }

            return new Hop(response, linkedSha, linkedSize);
        }
    }

    private static void EnsureSuccess(Uri source, HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpStatusException(source, (int)response.StatusCode, response.ReasonPhrase);
        }
    }

    private static bool IsTransient(Exception ex) => ex switch
    {
        HttpStatusException status => status.Transient,
        DownloadException => false,
        RangesNotHonouredException => false,
        HttpRequestException => true,
        TimeoutException => true,
        IOException io => !DiskFullException.Is(io),
        _ => false,
    };

    private static void DeletePartial(string partial, string statePath)
    {
        File.Delete(statePath);
        File.Delete(partial);
    }

    private readonly record struct Hop(HttpResponseMessage Response, string? LinkedSha256, long? LinkedSize);

    private readonly record struct Fetched(long Size, string Sha256, long ResumedBytes, int Parts);

    private sealed class RangesNotHonouredException(string message) : Exception(message);

    /// <summary>A token that fires when no data arrived for the stall timeout; <see cref="Restart"/> after each read.</summary>
    private sealed class StallGuard : IDisposable
    {
        private readonly CancellationTokenSource _source;
        private readonly CancellationToken _outer;
        private readonly TimeSpan _timeout;

        public StallGuard(TimeSpan timeout, CancellationToken outer)
        {
            _timeout = timeout;
            _outer = outer;
            _source = CancellationTokenSource.CreateLinkedTokenSource(outer);
            _source.CancelAfter(timeout);
        }

        public CancellationToken Token => _source.Token;

        public bool Stalled => _source.IsCancellationRequested && !_outer.IsCancellationRequested;

        public void Restart() => _source.CancelAfter(_timeout);

        public void Dispose() => _source.Dispose();
    }

    /// <summary>Thread-safe byte counter that reports at most every interval (and always on a phase change).</summary>
    private sealed class ProgressReporter(string file, IProgress<DownloadProgress>? sink, TimeSpan interval)
    {
        private readonly Lock _gate = new();
        private long _bytes;
        private long? _total;
        private DownloadPhase _phase;
        private long _lastReport;

        public void Phase(DownloadPhase phase, long bytes, long? total)
        {
            lock (_gate)
            {
                _phase = phase;
                _bytes = bytes;
                _total = total;
                _lastReport = Environment.TickCount64;
                sink?.Report(new DownloadProgress(file, phase, bytes, total));
            }
        }

        public void Add(long bytes)
        {
            if (sink is null)
            {
                return;
            }

            lock (_gate)
            {
                _bytes += bytes;
                long now = Environment.TickCount64;
                if (now - _lastReport >= interval.TotalMilliseconds)
                {
                    _lastReport = now;
                    sink.Report(new DownloadProgress(file, _phase, _bytes, _total));
                }
            }
        }
    }
}
