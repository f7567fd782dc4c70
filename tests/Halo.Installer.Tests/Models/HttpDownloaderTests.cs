using System.Collections.Concurrent;
using Halo.Installer.Models;
using Halo.Testing;

namespace Halo.Installer.Tests.Models;

public sealed class HttpDownloaderTests : IAsyncLifetime
{
    private const int FileSize = (1 << 20) + 12_345; // 17 parts of 64 KiB, the last one short
    private static readonly byte[] Content = FaultyFileServer.RandomBytes(FileSize, seed: 7);
    private static readonly string ContentSha = FaultyFileServer.Sha256(Content);

    private readonly TempDir _temp = new();
    private readonly ConcurrentQueue<string> _log = new();
    private FaultyFileServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await FaultyFileServer.StartAsync();
        _http = HttpDownloader.CreateHttpClient();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _temp.Dispose();
    }

    // Stalls are detected after 10 s (a loaded 2-core CI box can pause that long), except in the stall test.
    private HttpDownloader Downloader(int retries = 4, int parallel = 4, int stallMs = 10_000) => new(_http, new DownloadOptions
    {
        Parallelism = parallel,
        PartSize = 64 * 1024,
        MaxRetries = retries,
        RetryDelay = TimeSpan.FromMilliseconds(5),
        MaxRetryDelay = TimeSpan.FromMilliseconds(50),
        StallTimeout = TimeSpan.FromMilliseconds(stallMs),
        Log = _log.Enqueue,
    });

    private DownloadRequest Request(Uri source, string? sha = null, long? size = null) => new()
    {
        Source = source,
        Destination = _temp.File("model.bin"),
        ExpectedSha256 = sha,
        ExpectedSize = size,
    };

    private void AssertVerifiedFile(DownloadResult result)
    {
        Assert.Equal(ContentSha, result.Sha256);
        Assert.Equal(Content, File.ReadAllBytes(_temp.File("model.bin")));
        AssertNoLeftovers();
    }

    private void AssertNoLeftovers()
    {
        Assert.False(File.Exists(_temp.File("model.bin.partial")), "partial file left behind");
        Assert.False(File.Exists(_temp.File("model.bin.partial.state")), "state file left behind");
    }

    /// <summary>
    /// The server's count of bytes sent, once it reaches <paramref name="expected"/> (or after 5 s): it counts a
    /// chunk when its write returns, which can trail the client having read it.
    /// </summary>
    private async Task<long> BytesSentOnceAtLeast(long expected)
    {
        for (int i = 0; i < 100 && _server.BytesSent < expected; i++)
        {
            await Task.Delay(50);
        }

        return _server.BytesSent;
    }

    private void AssertNothingUnderFinalName() => Assert.False(File.Exists(_temp.File("model.bin")), "a file exists under the final name");

    [Fact]
    public async Task DownloadAsync_RangeServer_FetchesPartsInParallelAndVerifies()
    {
        Uri url = _server.Add("m.bin", Content);

        DownloadResult result = await Downloader().DownloadAsync(Request(url, ContentSha, FileSize), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Equal(17, result.Parts);
        Assert.Equal("catalog", result.Sha256Source);
        Assert.InRange(await BytesSentOnceAtLeast(FileSize), FileSize, FileSize + 1); // the probe's single byte
    }

    [Fact]
    public async Task DownloadAsync_ConnectionDroppedMidBody_RetriesThePartAndVerifies()
    {
        Uri url = _server.Add("m.bin", Content);
        int drops = 0;
        _server.FaultFor = (_, _, from) => from == 3 * 65536 && Interlocked.Increment(ref drops) <= 2 ? Fault.DropMidBody : Fault.None;

        DownloadResult result = await Downloader().DownloadAsync(Request(url, ContentSha), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Contains(_log, line => line.StartsWith("retry", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DownloadAsync_WrongBytesWithPinnedSha_FailsClearlyAndLeavesNothing()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.FaultFor = (_, _, from) => from == 5 * 65536 ? Fault.WrongBytes : Fault.None;

        var error = await Assert.ThrowsAsync<ChecksumMismatchException>(
            () => Downloader().DownloadAsync(Request(url, ContentSha), null, CancellationToken.None));

        Assert.Contains("sha256 mismatch", error.Message);
        Assert.Contains(ContentSha, error.Message);
        AssertNothingUnderFinalName();
        AssertNoLeftovers();
    }

    [Fact]
    public async Task DownloadAsync_WrongBytesWithServerDigest_FailsAgainstTheServersLfsSha()
    {
        _server.Add("m.bin", Content);
        _server.SendLinkedEtag = true;
        _server.FaultFor = (_, _, from) => from == 0 ? Fault.None : from == 2 * 65536 ? Fault.WrongBytes : Fault.None;

        var error = await Assert.ThrowsAsync<ChecksumMismatchException>(
            () => Downloader().DownloadAsync(Request(new Uri(_server.BaseUri, "redirect/m.bin")), null, CancellationToken.None));

        Assert.Contains("(server)", error.Message);
        AssertNothingUnderFinalName();
    }

    [Fact]
    public async Task DownloadAsync_RedirectWithLinkedEtag_UsesTheServerDigest()
    {
        _server.Add("m.bin", Content);
        _server.SendLinkedEtag = true;

        DownloadResult result = await Downloader().DownloadAsync(Request(new Uri(_server.BaseUri, "redirect/m.bin")), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Equal("server", result.Sha256Source);
    }

    [Fact]
    public async Task DownloadAsync_ServerDigestDisagreesWithPin_RefusesBeforeDownloading()
    {
        _server.Add("m.bin", Content);
        _server.SendLinkedEtag = true;
        _server.LinkedEtagOverride = new string('a', 64);

        var error = await Assert.ThrowsAsync<ChecksumMismatchException>(
            () => Downloader().DownloadAsync(Request(new Uri(_server.BaseUri, "redirect/m.bin"), ContentSha), null, CancellationToken.None));

        Assert.Contains("not downloading", error.Message);
        Assert.True(_server.BytesSent <= 1);
        AssertNothingUnderFinalName();
    }

    [Fact]
    public async Task DownloadAsync_ServerIgnoresRange_FallsBackToOneStream()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.IgnoreRanges = true;

        DownloadResult result = await Downloader().DownloadAsync(Request(url, ContentSha), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Equal(0, result.Parts);
    }

    [Fact]
    public async Task DownloadAsync_RangesStopWorkingMidway_RestartsAsOneStream()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.FaultFor = (_, _, from) => from == 4 * 65536 ? Fault.IgnoreRange : Fault.None;

        DownloadResult result = await Downloader().DownloadAsync(Request(url, ContentSha), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Equal(0, result.Parts);
        Assert.Contains(_log, line => line.Contains("one stream", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DownloadAsync_OneStreamDroppedMidBody_RestartsCleanFromZero()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.IgnoreRanges = true;
        int drops = 0;
        _server.FaultFor = (_, _, _) => Interlocked.Increment(ref drops) is 2 or 3 ? Fault.DropMidBody : Fault.None;

        DownloadResult result = await Downloader().DownloadAsync(Request(url, ContentSha), null, CancellationToken.None);

        AssertVerifiedFile(result);
    }

    [Fact]
    public async Task DownloadAsync_ChunkedWithoutLengthOrRanges_StreamsAndRecordsComputedHash()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.IgnoreRanges = true;
        _server.Chunked = true;

        DownloadResult result = await Downloader().DownloadAsync(Request(url), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Equal("computed", result.Sha256Source);
        Assert.Contains(_log, line => line.Contains("no checksum to verify against", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DownloadAsync_NotFound_FailsAtOnceWithoutRetrying()
    {
        Uri url = new(_server.BaseUri, "missing.bin");

        var error = await Assert.ThrowsAsync<HttpStatusException>(() => Downloader().DownloadAsync(Request(url), null, CancellationToken.None));

        Assert.Equal(404, error.Status);
        Assert.Contains("HTTP 404", error.Message);
        Assert.Equal(1, _server.Requests);
        AssertNothingUnderFinalName();
        AssertNoLeftovers();
    }

    [Fact]
    public async Task DownloadAsync_ServerErrorsThenRecovers_RetriesWithBackoff()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.FaultFor = (n, _, _) => n <= 2 ? Fault.ServerError : Fault.None;

        DownloadResult result = await Downloader().DownloadAsync(Request(url, ContentSha), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Equal(2, _log.Count(line => line.Contains("HTTP 500", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task DownloadAsync_ServerErrorsForever_GivesUpWithClearError()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.FaultFor = (_, _, _) => Fault.ServerError;

        var error = await Assert.ThrowsAsync<HttpStatusException>(() => Downloader(retries: 3).DownloadAsync(Request(url), null, CancellationToken.None));

        Assert.Equal(500, error.Status);
        Assert.Equal(4, _server.Requests);
        AssertNothingUnderFinalName();
        AssertNoLeftovers();
    }

    [Fact]
    public async Task DownloadAsync_StalledResponse_TimesOutAndRetries()
    {
        Uri url = _server.Add("m.bin", Content);
        int stalls = 0;
        _server.FaultFor = (_, _, from) => from == 65536 && Interlocked.Increment(ref stalls) == 1 ? Fault.Stall : Fault.None;

        DownloadResult result = await Downloader(stallMs: 700).DownloadAsync(Request(url, ContentSha), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Contains(_log, line => line.Contains("no data for", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DownloadAsync_PermanentFailureMidway_KeepsDonePartsAndResumesLater()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.FaultFor = (_, _, from) => from >= 10 * 65536 ? Fault.NotFound : Fault.None;

        await Assert.ThrowsAsync<HttpStatusException>(() => Downloader(parallel: 1).DownloadAsync(Request(url, ContentSha), null, CancellationToken.None));
        AssertNothingUnderFinalName();
        Assert.True(File.Exists(_temp.File("model.bin.partial.state")), "the state of a resumable download was removed");
        long sentBefore = _server.BytesSent;

        _server.FaultFor = (_, _, _) => Fault.None;
        DownloadResult result = await Downloader().DownloadAsync(Request(url, ContentSha), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Equal(10 * 65536, result.ResumedBytes);
        Assert.InRange(await BytesSentOnceAtLeast(sentBefore + FileSize - (10 * 65536)) - sentBefore, FileSize - (10 * 65536), FileSize - (10 * 65536) + 1);
    }

    [Fact]
    public async Task DownloadAsync_FileChangedOnServerBetweenRuns_StartsOver()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.FaultFor = (_, _, from) => from >= 8 * 65536 ? Fault.NotFound : Fault.None;
        await Assert.ThrowsAsync<HttpStatusException>(() => Downloader(parallel: 1).DownloadAsync(Request(url), null, CancellationToken.None));

        byte[] changed = FaultyFileServer.RandomBytes(FileSize, seed: 8);
        _server.Add("m.bin", changed);
        _server.FaultFor = (_, _, _) => Fault.None;
        DownloadResult result = await Downloader().DownloadAsync(Request(url, FaultyFileServer.Sha256(changed)), null, CancellationToken.None);

        Assert.Equal(0, result.ResumedBytes);
        Assert.Equal(changed, File.ReadAllBytes(_temp.File("model.bin")));
        Assert.Contains(_log, line => line.Contains("starting over", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DownloadAsync_CorruptStateFile_StartsOverInsteadOfTrustingIt()
    {
        Uri url = _server.Add("m.bin", Content);
        File.WriteAllBytes(_temp.File("model.bin.partial"), new byte[FileSize]);
        File.WriteAllText(_temp.File("model.bin.partial.state"), "{ not json");

        DownloadResult result = await Downloader().DownloadAsync(Request(url, ContentSha), null, CancellationToken.None);

        AssertVerifiedFile(result);
        Assert.Equal(0, result.ResumedBytes);
    }

    [Fact]
    public async Task DownloadAsync_SizeDiffersFromPin_FailsBeforeDownloading()
    {
        Uri url = _server.Add("m.bin", Content);

        var error = await Assert.ThrowsAsync<DownloadException>(() => Downloader().DownloadAsync(Request(url, size: FileSize + 1), null, CancellationToken.None));

        Assert.Contains($"{FileSize} bytes", error.Message);
        AssertNothingUnderFinalName();
    }

    [Fact]
    public async Task DownloadAsync_Cancelled_KeepsResumableState()
    {
        Uri url = _server.Add("m.bin", Content);
        _server.BytesPerSecond = 512 * 1024;
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<DownloadProgress>(p =>
        {
            if (p.Bytes > 300_000)
            {
                cts.Cancel();
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Downloader(parallel: 2).DownloadAsync(Request(url, ContentSha), progress, cts.Token));

        AssertNothingUnderFinalName();
        Assert.True(File.Exists(_temp.File("model.bin.partial.state")));
    }

    [Fact]
    public async Task DownloadAsync_Progress_ReportsMonotonicBytesUpToTheTotal()
    {
        Uri url = _server.Add("m.bin", Content);
        var samples = new ConcurrentQueue<DownloadProgress>();

        await new HttpDownloader(_http, new DownloadOptions { PartSize = 65536, ProgressInterval = TimeSpan.Zero })
            .DownloadAsync(Request(url, ContentSha), new SynchronousProgress<DownloadProgress>(samples.Enqueue), CancellationToken.None);

        DownloadProgress[] downloading = samples.Where(s => s.Phase == DownloadPhase.Downloading).ToArray();
        Assert.NotEmpty(downloading);
        Assert.All(downloading, s => Assert.Equal(FileSize, s.Total));
        Assert.Equal(FileSize, downloading.Max(s => s.Bytes));
        Assert.Equal(DownloadPhase.Done, samples.Last().Phase);
    }
}
