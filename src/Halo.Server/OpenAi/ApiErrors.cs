using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Halo.Server.OpenAi;

/// <summary>The OpenAI error body: <c>{"error": {"message", "type", "param", "code"}}</c>, one per status.</summary>
internal static class ApiErrors
{
    public static string TypeFor(int status) => status switch
    {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        405 => "invalid_request_error",
        408 => "timeout_error",
        413 => "request_too_large",
        415 => "invalid_request_error",
        429 => "rate_limit_error",
        503 => "unavailable_error",
        _ => status >= 500 ? "server_error" : "invalid_request_error",
    };

    public static Task WriteAsync(HttpContext context, int status, string message, string? param = null, string? code = null)
    {
        HttpResponse response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        using var buffer = new MemoryStream(256);
        using (var json = new Utf8JsonWriter(buffer, ResponseJson.WriterOptions))
        {
            json.WriteStartObject();
            json.WriteStartObject("error");
            json.WriteString("message", message);
            json.WriteString("type", TypeFor(status));
            WriteStringOrNull(json, "param", param);
            WriteStringOrNull(json, "code", code);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        response.ContentLength = buffer.Length;
        return response.Body.WriteAsync(buffer.GetBuffer(), 0, (int)buffer.Length, context.RequestAborted);
    }

    public static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }
}
