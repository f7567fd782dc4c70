using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Halo.Installer.Tests.Models;

/// <summary>What the server does to one response.</summary>
internal enum Fault
{
    None,
    NotFound,
    ServerError,
    /// <summary>Sends half the body, then resets the connection.</summary>
    DropMidBody,
    /// <summary>Flips one byte of the body.</summary>
    WrongBytes,
    /// <summary>Answers a range request with the whole file (200).</summary>
    IgnoreRange,
    /// <summary>Sends a little, then goes silent without closing.</summary>
    Stall,
}

/// <summary>A real Kestrel file server on 127.0.0.1:0 that serves in-memory files with HTTP ranges, ETags and
/// injectable faults, and counts what it sent. Paths are served under "/"; "/redirect/X" answers 302 to "/X".</summary>
internal sealed class FaultyFileServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private int _requests;
    private long _bytesSent;

    private FaultyFileServer(WebApplication app)
    {
        _app = app;
    }

    public Uri BaseUri { get; private set; } = null!;

    /// <summary>Decides the fault for each request: (request number from 1, path, range start or null).</summary>
    public Func<int, string, long?, Fault> FaultFor { get; set; } = (_, _, _) => Fault.None;

    /// <summary>Every range request is answered with the whole file.</summary>
    public bool IgnoreRanges { get; set; }

    /// <summary>Body bytes per second per response (0 = as fast as possible).</summary>
    public long BytesPerSecond { get; set; }

    /// <summary>Only responses for ranges starting at or after this offset are throttled.</summary>
    public long ThrottleFrom { get; set; }

    /// <summary>Send Hugging Face's X-Linked-Etag (the file's sha256, or this override).</summary>
    public bool SendLinkedEtag { get; set; }

    public string? LinkedEtagOverride { get; set; }

    /// <summary>Omit Content-Length (chunked) on full responses.</summary>
    public bool Chunked { get; set; }

    public int Requests => Volatile.Read(ref _requests);

    public long BytesSent => Interlocked.Read(ref _bytesSent);

    public ConcurrentQueue<string> Log { get; } = new();

    public static async Task<FaultyFileServer> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        WebApplication app = builder.Build();
        var server = new FaultyFileServer(app);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUri = new Uri(address.TrimEnd('/') + "/");
        return server;
    }

    public Uri Add(string path, byte[] content)
    {
        _files[path] = content;
        return new Uri(BaseUri, path);
    }

    public static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static string Sha256(byte[] content) => System.Convert.ToHexStringLower(SHA256.HashData(content));

    public static string ETagOf(byte[] content) => "\"" + Sha256(content)[..16] + "\"";

    private async Task HandleAsync(HttpContext context)
    {
        int number = Interlocked.Increment(ref _requests);
        string path = context.Request.Path.Value!.TrimStart('/');
        if (path.StartsWith("redirect/", StringComparison.Ordinal))
        {
            if (SendLinkedEtag && _files.TryGetValue(path["redirect/".Length..], out byte[]? target))
            {
                context.Response.Headers["X-Linked-Etag"] = "\"" + (LinkedEtagOverride ?? Sha256(target)) + "\"";
                context.Response.Headers["X-Linked-Size"] = target.Length.ToString();
            }

            context.Response.StatusCode = 302;
            context.Response.Headers.Location = "/" + path["redirect/".Length..];
            return;
        }

        (long From, long To)? range = ParseRange(context.Request.Headers.Range.ToString());
        Fault fault = FaultFor(number, path, range?.From);
        Log.Enqueue($"{number} {path} {context.Request.Headers.Range} -> {fault}");
        if (!_files.TryGetValue(path, out byte[]? content) || fault == Fault.NotFound)
        {
            context.Response.StatusCode = 404;
            return;
        }

        if (fault == Fault.ServerError)
        {
            context.Response.StatusCode = 500;
            return;
        }

        context.Response.Headers.ETag = ETagOf(content);
        context.Response.Headers.AcceptRanges = "bytes";
        string ifRange = context.Request.Headers.IfRange.ToString();
        bool honourRange = range is not null && !IgnoreRanges && fault != Fault.IgnoreRange && (ifRange.Length == 0 || ifRange == ETagOf(content));
        long start = 0;
        long length = content.Length;
        if (honourRange)
        {
            (long from, long to) = range!.Value;
            if (from >= content.Length)
            {
                context.Response.StatusCode = 416;
                context.Response.Headers.ContentRange = $"bytes */{content.Length}";
                return;
            }

            to = Math.Min(to, content.Length - 1);
            start = from;
            length = to - from + 1;
            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {from}-{to}/{content.Length}";
        }

        if (!Chunked || honourRange)
        {
            context.Response.ContentLength = length;
        }

        byte[] body = content.AsSpan((int)start, (int)length).ToArray();
        if (fault == Fault.WrongBytes)
        {
            body[body.Length / 2] ^= 0x5A;
        }

        long limit = fault == Fault.DropMidBody ? length / 2 : fault == Fault.Stall ? Math.Min(length, 1024) : length;
        await SendAsync(context, body, limit, start >= ThrottleFrom ? BytesPerSecond : 0);
        if (fault == Fault.DropMidBody)
        {
            context.Abort();
        }
        else if (fault == Fault.Stall)
        {
            await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { });
        }
    }

    private async Task SendAsync(HttpContext context, byte[] body, long limit, long bytesPerSecond)
    {
        const int chunk = 16 * 1024;
        for (long sent = 0; sent < limit;)
        {
            int n = (int)Math.Min(chunk, limit - sent);
            try
            {
                await context.Response.Body.WriteAsync(body.AsMemory((int)sent, n), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
                return;
            }

            sent += n;
            Interlocked.Add(ref _bytesSent, n);
            if (BytesPerSecond > 0)
            {
                await Task.Delay(TimeSpan.FromSeconds((double)n / BytesPerSecond), CancellationToken.None);
            }
        }
    }

    private static (long From, long To)? ParseRange(string header)
    {
        if (!header.StartsWith("bytes=", StringComparison.Ordinal))
        {
            return null;
        }

        string[] parts = header["bytes=".Length..].Split('-');
        return parts.Length == 2 && long.TryParse(parts[0], out long from) && long.TryParse(parts[1], out long to) ? (from, to) : null;
    }

    public async ValueTask DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stopping.Token);
        await _app.DisposeAsync();
    }
}
