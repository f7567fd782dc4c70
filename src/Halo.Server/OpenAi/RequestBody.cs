using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;

namespace Halo.Server.OpenAi;

/// <summary>Reads a JSON request body whole, within the configured size limit.</summary>
internal static class RequestBody
{
    /// <summary>The body's bytes. Over <paramref name="limit"/>: <see cref="BodyTooLargeException"/> (413),
    /// checked against Content-Length first and against the bytes read for chunked bodies.</summary>
    public static async Task<ReadOnlyMemory<byte>> ReadAsync(HttpContext context, long limit)
    {
        HttpRequest request = context.Request;
        if (request.ContentLength > limit)
        {
            throw TooLarge(context, limit);
        }

        // The body is parsed as JSON whatever Content-Type says: `curl -d` sends form encoding by default.
        PipeReader reader = request.BodyReader;
        while (true)
        {
            ReadResult result = await reader.ReadAsync(context.RequestAborted).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            if (buffer.Length > limit)
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                throw TooLarge(context, limit);
            }

            if (result.IsCompleted)
            {
                byte[] body = buffer.ToArray();
                reader.AdvanceTo(buffer.End);
                return body;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>The rest of an oversized body is never read, so the connection cannot carry another request:
    /// say so (<c>Connection: close</c>), or a keep-alive client sends its next request into a closing socket.</summary>
    private static BodyTooLargeException TooLarge(HttpContext context, long limit)
    {
        context.Response.Headers.Connection = "close";
        return new BodyTooLargeException(limit);
    }
}

/// <summary>A body over <c>server.max_body_bytes</c>: answered 413.</summary>
internal sealed class BodyTooLargeException(long limit)
    : ApiException(413, $"request body exceeds the limit of {limit} bytes (server.max_body_bytes)", code: "request_too_large")
{
}
