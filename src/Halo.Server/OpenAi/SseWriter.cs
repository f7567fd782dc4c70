using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Halo.Server.OpenAi;

/// <summary>Server-sent events as OpenAI streams them: <c>data: {json}</c> blank-line separated, flushed per
/// event, ended by <c>data: [DONE]</c>.</summary>
internal sealed class SseWriter
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private readonly HttpContext _context;
    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly Utf8JsonWriter _json;

    public SseWriter(HttpContext context)
    {
        _context = context;
        _json = new Utf8JsonWriter(_buffer, ResponseJson.WriterOptions);
        HttpResponse response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
    }

    /// <summary>Writes one event whose JSON the callback builds.</summary>
    public async ValueTask WriteAsync(Action<Utf8JsonWriter> build)
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        build(_json);
        _json.Flush();
        Stream body = _context.Response.Body;
        await body.WriteAsync(DataPrefix, _context.RequestAborted).ConfigureAwait(false);
        await body.WriteAsync(_buffer.WrittenMemory, _context.RequestAborted).ConfigureAwait(false);
        await body.WriteAsync(EventEnd, _context.RequestAborted).ConfigureAwait(false);
        await body.FlushAsync(_context.RequestAborted).ConfigureAwait(false);
    }

    public async ValueTask DoneAsync()
    {
        await _context.Response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), _context.RequestAborted).ConfigureAwait(false);
        await _context.Response.Body.FlushAsync(_context.RequestAborted).ConfigureAwait(false);
    }
}

/// <summary>JSON pieces both endpoints write.</summary>
internal static class ResponseJson
{
    /// <summary>Generated text as UTF-8, not \u-escaped (the response is JSON, not HTML).</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string NewId(string prefix) => prefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public static void WriteUsage(Utf8JsonWriter json, int prompt, int completion)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", prompt);
        json.WriteNumber("completion_tokens", completion);
        json.WriteNumber("total_tokens", prompt + completion);
        json.WriteEndObject();
    }

    /// <summary>A token's text for logprobs; bytes that are not whole UTF-8 characters show as U+FFFD (the
    /// <c>bytes</c> array carries them exactly).</summary>
    public static string TokenText(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);

    public static void WriteBytes(Utf8JsonWriter json, ReadOnlySpan<byte> bytes)
    {
        json.WriteStartArray("bytes");
        foreach (byte b in bytes)
        {
            json.WriteNumberValue(b);
        }

        json.WriteEndArray();
    }

    /// <summary>Buffers a whole JSON response and writes it with its Content-Length.</summary>
    public static async Task WriteAsync(HttpContext context, int status, Action<Utf8JsonWriter> build)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var json = new Utf8JsonWriter(buffer, WriterOptions))
        {
            build(json);
        }

        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = buffer.WrittenCount;
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
    }
}
