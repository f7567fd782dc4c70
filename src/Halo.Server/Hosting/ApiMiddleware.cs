using System.Diagnostics;
using Halo.Core.Configuration;
using Halo.Server.Metrics;
using Halo.Server.OpenAi;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Hosting;

/// <summary>
/// The outermost layer of every request: counts it (<c>halo_requests_total{endpoint,code}</c>, duration), turns
/// <see cref="ApiException"/>s into OpenAI error bodies, gives bodiless error statuses (404, 405) the same shape,
/// and makes anything unexpected a logged 500 with that shape rather than a dropped connection.
/// </summary>
internal sealed class ApiMiddleware(RequestDelegate next, HaloMetrics metrics, ILogger<ApiMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
            if (context.Response.StatusCode >= 400 && !context.Response.HasStarted && context.Response.ContentType is null)
            {
                int status = context.Response.StatusCode;
                await ApiErrors.WriteAsync(context, status, status switch
                {
                    404 => $"no such endpoint: {context.Request.Method} {context.Request.Path}",
                    405 => $"{context.Request.Method} is not allowed on {context.Request.Path}",
                    _ => $"request failed with status {status}",
                });
            }
        }
        catch (ApiException e) when (!context.Response.HasStarted)
        {
            if (e.RetryAfterSeconds is { } retry)
            {
                context.Response.Headers.RetryAfter = retry.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            await ApiErrors.WriteAsync(context, e.Status, e.Message, e.Param, e.Code);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            // Kestrel's own limits (body size, bad framing).
            await ApiErrors.WriteAsync(context, e.StatusCode, e.Message);
        }
        catch (Exception e) when (!context.Response.HasStarted && context.Request.Path.StartsWithSegments("/mcp")
            && IsMcpJsonFault(e))
        {
            // The MCP SDK deserialises request params itself and lets a wrong-typed field or a string that is not
            // valid Unicode escape: the client's fault (400), not an internal error.
            await ApiErrors.WriteAsync(context, 400, $"invalid MCP request: {e.Message}", (e as System.Text.Json.JsonException)?.Path);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            Log.UnhandledError(logger, context.Request.Path, e);
            await ApiErrors.WriteAsync(context, 500, "internal error; see the server log", code: "internal_error");
        }
        finally
        {
            string endpoint = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "other";
            metrics.Requests.WithLabels(endpoint, context.Response.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
            metrics.RequestDuration.WithLabels(endpoint).Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
    }

    /// <summary>A JSON fault raised while the MCP SDK reads the request: a wrong-typed field (JsonException) or
    /// a string that is not valid Unicode (InvalidOperationException out of System.Text.Json's reader).</summary>
    private static bool IsMcpJsonFault(Exception e) =>
        e is System.Text.Json.JsonException
        || (e is InvalidOperationException && e.StackTrace?.Contains("at System.Text.Json.", StringComparison.Ordinal) == true);
}

/// <summary>
/// API keys: with hashes configured, every path not in <c>auth.public_paths</c> needs
/// <c>Authorization: Bearer KEY</c>; the key is hashed and compared in constant time against every stored hash.
/// </summary>
internal sealed class ApiKeyMiddleware(RequestDelegate next, HaloOptions options, IReadOnlyList<byte[]> keyHashes)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (keyHashes.Count == 0 || IsPublic(context.Request.Path))
        {
            return next(context);
        }

        string? header = context.Request.Headers.Authorization;
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return ApiErrors.WriteAsync(context, 401, "missing API key: send Authorization: Bearer KEY", code: "missing_api_key");
        }

        if (!ApiKeyHashes.Matches(header.AsSpan("Bearer ".Length).Trim(), keyHashes))
        {
            return ApiErrors.WriteAsync(context, 401, "invalid API key", code: "invalid_api_key");
        }

        return next(context);
    }

    private bool IsPublic(PathString path)
    {
        foreach (string open in options.Auth.PublicPaths)
        {
            if (path.Equals(open, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
