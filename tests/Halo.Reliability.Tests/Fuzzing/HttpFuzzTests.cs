using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Halo.Reliability.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Halo.Reliability.Tests.Fuzzing;

/// <summary>One daemon for the whole class: every case below hits the same process, which must survive all.</summary>
public sealed class FuzzDaemonFixture : IDisposable
{
    internal ServedDaemon Daemon { get; } = new(new Dictionary<string, string>
    {
        // A short context bounds the few cases whose mutation asks for many tokens.
        ["HALO_MODEL_CONTEXT_LENGTH"] = "64",
        ["HALO_MODEL_THREADS"] = "1",
    });

    public void Dispose() => Daemon.Dispose();
}

/// <summary>
/// HTTP fuzzing of every endpoint against one real <c>halo-server</c> process: seeded malformed and hostile
/// requests (never a 5xx, every error in the OpenAI shape), 100 MB bodies (413, memory flat), slowloris bodies
/// (timed out, no slot held), and at the end the process is alive, healthy and idle.
/// </summary>
public sealed class HttpFuzzTests(FuzzDaemonFixture fixture, ITestOutputHelper output) : IClassFixture<FuzzDaemonFixture>
{
    private const long HundredMb = 100L * 1024 * 1024;
    private const long MaxBodyBytes = 1024 * 1024;   // server.max_body_bytes, the default
    private readonly ServedDaemon _daemon = fixture.Daemon;

    [Fact]
    public async Task Fuzz_SeededCasesOnEveryEndpoint_NeverA5xxAndEveryErrorOpenAiShaped()
    {
        int seed = LongTests.Int("HALO_FUZZ_SEED", 20261125, 20261125);
        int count = LongTests.Int("HALO_FUZZ_CASES", 10_000, 100_000);
        FuzzCase[] cases = FuzzCases.Generate(seed, count).ToArray();
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 8, AutomaticDecompression = DecompressionMethods.None };
        using var client = new HttpClient(handler) { BaseAddress = _daemon.Url, Timeout = TimeSpan.FromSeconds(60) };

        // Warm-up: the first thousand cases settle the JIT and the heaps; memory is measured from there.
        var statuses = new ConcurrentDictionary<string, int>();
        var failures = new ConcurrentQueue<string>();
        var clock = Stopwatch.StartNew();
        await RunAsync(client, cases[..Math.Min(1000, count)], statuses, failures);
        long rssAfterWarmUp = _daemon.Rss;
        await RunAsync(client, cases[Math.Min(1000, count)..], statuses, failures);
        long rssAfter = _daemon.Rss;

        output.WriteLine($"fuzz: {count} cases, seed {seed}, {clock.Elapsed.TotalSeconds:F1} s");
        foreach ((string key, int n) in statuses.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"  {key,-40} {n}");
        }

        output.WriteLine($"  RSS after warm-up {rssAfterWarmUp / 1048576.0:F1} MiB, after all cases {rssAfter / 1048576.0:F1} MiB");
        if (!failures.IsEmpty)
        {
            output.WriteLine("daemon errors:\n" + string.Join("\n", _daemon.Process.Output.Split('\n').Where(l => l.Contains("fail:", StringComparison.Ordinal)).Take(10)));
        }

        Assert.True(failures.IsEmpty, $"{failures.Count} bad answers, first ones:\n{string.Join("\n", failures.Take(10))}");
        Assert.True(rssAfter < rssAfterWarmUp + 64L * 1024 * 1024, $"RSS grew from {rssAfterWarmUp} to {rssAfter} bytes");
        await _daemon.AssertHealthyAndIdleAsync();
    }

    [Fact]
    public async Task Body_100MbDeclaredInContentLength_413BeforeReadingIt()
    {
        long before = _daemon.Rss;
        using RawHttp http = await RawHttp.ConnectAsync(_daemon.Url);
        await http.SendHeadAsync("POST", "/v1/chat/completions", ["Content-Type: application/json", $"Content-Length: {HundredMb}"]);
        Task<string> response = http.ReadResponseAsync(TimeSpan.FromSeconds(30));
        long sent = await SendZerosAsync(http, HundredMb, response);

        string text = await response;
        output.WriteLine($"sent {sent} of {HundredMb} bytes before the server answered; RSS {before} -> {_daemon.Rss}");
        Assert.Equal(413, RawHttp.Status(text));
        Assert.Contains("\"type\":\"request_too_large\"", text, StringComparison.Ordinal);
        Assert.True(_daemon.Rss < before + 32L * 1024 * 1024, $"RSS grew from {before} to {_daemon.Rss} bytes");
        await _daemon.AssertHealthyAndIdleAsync();
    }

    [Fact]
    public async Task Body_100MbChunkedWithoutLength_413AfterTheLimitAndMemoryFlat()
    {
        long before = _daemon.Rss;
        using RawHttp http = await RawHttp.ConnectAsync(_daemon.Url);
        await http.SendHeadAsync("POST", "/v1/completions", ["Content-Type: application/json", "Transfer-Encoding: chunked"]);
        Task<string> response = http.ReadResponseAsync(TimeSpan.FromSeconds(60));
        long sent = await SendZerosAsync(http, HundredMb, response, chunked: true);

        string text = await response;
        output.WriteLine($"sent {sent} of {HundredMb} bytes chunked before the server answered; RSS {before} -> {_daemon.Rss}");
        Assert.Equal(413, RawHttp.Status(text));
        Assert.True(sent < HundredMb, "the server read the whole 100 MB instead of stopping at its limit");
        Assert.True(_daemon.Rss < before + 32L * 1024 * 1024, $"RSS grew from {before} to {_daemon.Rss} bytes");
        await _daemon.AssertHealthyAndIdleAsync();
    }

    /// <summary>Slowloris: 32 connections each promise 10 kB and send one byte a second. Kestrel's minimum body
    /// rate must end every one of them (408 or a close) while an ordinary request is still served.</summary>
    [Fact]
    public async Task SlowBodies_OneByteASecond_TimedOutWhileOthersAreServed()
    {
        const int connections = 32;
        var clock = Stopwatch.StartNew();
        Task<(string Response, TimeSpan At)>[] slow = Enumerable.Range(0, connections).Select(async _ =>
        {
            using RawHttp http = await RawHttp.ConnectAsync(_daemon.Url);
            await http.SendHeadAsync("POST", "/v1/chat/completions", ["Content-Type: application/json", "Content-Length: 10000"]);
            Task<string> response = http.ReadResponseAsync(TimeSpan.FromSeconds(60));
            byte[] one = "{"u8.ToArray();
            while (!response.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                try
                {
                    await http.Stream.WriteAsync(one);
                }
                catch (IOException)
                {
                    break;
                }

                await Task.WhenAny(response, Task.Delay(1000));
            }

            return (await response, clock.Elapsed);
        }).ToArray();

        await Task.Delay(2000);
        using (var served = await _daemon.Client.PostAsync("v1/chat/completions", Json("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":2}""")))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        (string Response, TimeSpan At)[] results = await Task.WhenAll(slow);
        TimeSpan last = results.Max(r => r.At);
        output.WriteLine($"{connections} slow bodies: statuses {string.Join(",", results.Select(r => RawHttp.Status(r.Response)).Distinct())}, the last cut after {last.TotalSeconds:F1} s");
        Assert.All(results, r => Assert.Contains(RawHttp.Status(r.Response), new[] { 0, 408 }));
        Assert.True(last < TimeSpan.FromSeconds(40), $"a slow body held its connection for {last}");
        await _daemon.AssertHealthyAndIdleAsync();
    }

    /// <summary>Slowloris on the request head: 32 connections dribble header lines and never finish them.
    /// Kestrel's request-headers timeout (30 s) must close each; ordinary requests are served meanwhile.</summary>
    [Fact]
    public async Task SlowHeaders_NeverFinished_ConnectionsClosedWhileOthersAreServed()
    {
        const int connections = 32;
        var clock = Stopwatch.StartNew();
        Task<TimeSpan>[] slow = Enumerable.Range(0, connections).Select(async i =>
        {
            using RawHttp http = await RawHttp.ConnectAsync(_daemon.Url);
            await http.Stream.WriteAsync("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"u8.ToArray());
            Task<string> response = http.ReadResponseAsync(TimeSpan.FromSeconds(90));
            for (int h = 0; !response.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(90); h++)
            {
                try
                {
                    await http.Stream.WriteAsync(Encoding.ASCII.GetBytes($"X-Slow-{h}: {i}\r\n"));
                }
                catch (IOException)
                {
                    break;
                }

                await Task.WhenAny(response, Task.Delay(1000));
            }

            await response;
            return clock.Elapsed;
        }).ToArray();

        await Task.Delay(2000);
        using (var served = await _daemon.Client.PostAsync("v1/completions", Json("""{"prompt":"hi","max_tokens":2}""")))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        TimeSpan[] closedAt = await Task.WhenAll(slow);
        output.WriteLine($"{connections} never-finished request heads: closed after {closedAt.Min().TotalSeconds:F1} to {closedAt.Max().TotalSeconds:F1} s");
        Assert.True(closedAt.Max() < TimeSpan.FromSeconds(60), $"a slow head held its connection for {closedAt.Max()}");
        await _daemon.AssertHealthyAndIdleAsync();
    }

    private async Task RunAsync(HttpClient client, FuzzCase[] cases, ConcurrentDictionary<string, int> statuses, ConcurrentQueue<string> failures)
    {
        await Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (c, ct) =>
        {
            using var request = new HttpRequestMessage(c.Method, c.Path);
            if (c.Body is not null)
            {
                request.Content = new ByteArrayContent(c.Body);
                request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            }

            int status;
            string body;
            try
            {
                using HttpResponseMessage response = await client.SendAsync(request, ct);
                status = (int)response.StatusCode;
                body = await response.Content.ReadAsStringAsync(ct);
                string? problem = Check(c, response, body);
                if (problem is not null)
                {
                    failures.Enqueue($"{problem}: {c}\n  -> {status} {Clip(body)}");
                }
            }
            catch (HttpRequestException) when (c.Body!.Length > MaxBodyBytes)
            {
                // Over the limit: the daemon answers 413 and closes before the client has sent it all, which
                // HttpClient reports as a failed send. The raw-socket tests below read that 413 itself.
                status = 413;
            }
            catch (HttpRequestException e)
            {
                failures.Enqueue($"connection failed ({e.Message} {e.InnerException?.Message}): {c}");
                status = 0;
            }

            statuses.AddOrUpdate($"{c.Kind} {status}", 1, (_, n) => n + 1);
        });
    }

    /// <summary>What is wrong with an answer, or null: a 5xx; a 4xx without an OpenAI error object; a 200 whose
    /// JSON does not parse; a stream that does not end in <c>data: [DONE]</c> or holds a half-written event.</summary>
    private static string? Check(FuzzCase c, HttpResponseMessage response, string body)
    {
        int status = (int)response.StatusCode;
        if (status >= 500)
        {
            return "server error";
        }

        // HEAD has no body; /metrics is Prometheus text, not JSON, whatever the method.
        if (c.Method == HttpMethod.Head || (c.Path.StartsWith("metrics", StringComparison.Ordinal) && status == 200))
        {
            return null;
        }

        // Kestrel refuses a NUL in the request target itself, before any of our code runs: a bare 400.
        if (status == 400 && c.Path.Contains("%00", StringComparison.Ordinal))
        {
            return null;
        }

        if (status >= 400)
        {
            return ErrorShape(body, jsonRpc: c.Path.StartsWith("mcp", StringComparison.Ordinal));
        }

        if (response.Content.Headers.ContentType?.MediaType == "text/event-stream")
        {
            return SseShape(body);
        }

        try
        {
            using var _ = JsonDocument.Parse(body);
            return null;
        }
        catch (JsonException)
        {
            return "200 with a body that is not JSON";
        }
    }

    /// <summary>OpenAI's error object; /mcp speaks JSON-RPC, whose error has a code and a message but no type.</summary>
    private static string? ErrorShape(string body, bool jsonRpc)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            return doc.RootElement.TryGetProperty("error", out JsonElement e) && e.TryGetProperty("message", out JsonElement m)
                && m.ValueKind == JsonValueKind.String && (jsonRpc || e.TryGetProperty("type", out _))
                ? null : "error body without error.message/type";
        }
        catch (JsonException)
        {
            return "error body that is not JSON";
        }
    }

    internal static string? SseShape(string body)
    {
        if (!body.EndsWith("data: [DONE]\n\n", StringComparison.Ordinal))
        {
            return "stream does not end with data: [DONE]";
        }

        foreach (string line in body.Split('\n'))
        {
            if (line.StartsWith("data: {", StringComparison.Ordinal))
            {
                try
                {
                    using var _ = JsonDocument.Parse(line["data: ".Length..]);
                }
                catch (JsonException)
                {
                    return "half-written SSE event";
                }
            }
        }

        return null;
    }

    /// <summary>Writes up to <paramref name="total"/> zero bytes (chunked when asked) until the server answers or
    /// closes; returns how many were sent.</summary>
    private static async Task<long> SendZerosAsync(RawHttp http, long total, Task<string> response, bool chunked = false)
    {
        var block = new byte[256 * 1024];
        byte[] chunkHead = Encoding.ASCII.GetBytes($"{block.Length:x}\r\n");
        long sent = 0;
        try
        {
            while (sent < total && !response.IsCompleted)
            {
                if (chunked)
                {
                    await http.Stream.WriteAsync(chunkHead);
                }

                await http.Stream.WriteAsync(block);
                if (chunked)
                {
                    await http.Stream.WriteAsync("\r\n"u8.ToArray());
                }

                sent += block.Length;
            }
        }
        catch (IOException)
        {
            // The server stopped reading and closed: the expected end of an oversized body.
        }

        return sent;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static string Clip(string s) => s.Length > 300 ? s[..300] + "..." : s;
}
