using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Halo.Server.Mcp;

/// <summary>
/// The appliance seen from <c>halo mcp</c>: every call goes to a running daemon over its HTTP API
/// (<c>/v1/completions</c>, <c>/v1/chat/completions</c>, <c>/tokenize</c>, <c>/v1/models</c>, <c>/metrics</c>,
/// <c>/health</c>), so generation runs in the daemon's scheduler and no second engine is loaded. Generations are
/// streamed (one event per token, so progress is exact); cancelling drops the stream, which the daemon sees as
/// a client disconnect and answers by freeing the slot.
/// </summary>
public sealed class HttpAppliance : IApplianceApi, IDisposable
{
    private static readonly TimeSpan ShortCallLimit = TimeSpan.FromSeconds(30);

    private readonly HttpClient _http;
    private readonly Uri _server;
    private readonly bool _hasKey;
    private readonly Func<CancellationToken, Task<JsonObject>> _doctor;

    /// <param name="server">The daemon's base URL.</param>
    /// <param name="apiKey">Sent as <c>Authorization: Bearer</c>; null when the daemon has no keys.</param>
    /// <param name="doctor">Runs the doctor on this machine (the CLI links the doctor library).</param>
    public HttpAppliance(Uri server, string? apiKey, Func<CancellationToken, Task<JsonObject>> doctor)
    {
        _server = server;
        _hasKey = apiKey is not null;
        _doctor = doctor;
        _http = new HttpClient { BaseAddress = server, Timeout = Timeout.InfiniteTimeSpan };
        if (apiKey is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }
    }

    public async Task<GenerationOutcome> GenerateAsync(JsonObject request, bool chat, Func<int, ValueTask> onToken, CancellationToken cancellationToken)
    {
        var body = (JsonObject)request.DeepClone();
        body["stream"] = true;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };

        // One event per token even while stop-string matching holds text back: the count behind progress.
        body["logprobs"] = chat ? true : 0;
        string path = chat ? "v1/chat/completions" : "v1/completions";
        using var message = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body) };
        using HttpResponseMessage response = await SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await using Stream stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);

        var text = new StringBuilder();
        string model = "", finish = "";
        int generated = 0, promptTokens = 0, completionTokens = 0;
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
            {
                continue;
            }

            string data = line["data: ".Length..];
            if (data == "[DONE]")
            {
                return new GenerationOutcome(model, text.ToString(), finish, promptTokens, completionTokens);
            }

            JsonNode? chunk = JsonNode.Parse(data);
            model = chunk?["model"]?.GetValue<string>() ?? model;
            if (chunk?["usage"] is JsonObject usage)
            {
                promptTokens = usage["prompt_tokens"]?.GetValue<int>() ?? 0;
                completionTokens = usage["completion_tokens"]?.GetValue<int>() ?? 0;
            }

            if (chunk?["choices"] is not JsonArray { Count: > 0 } choices || choices[0] is not JsonObject choice)
            {
                continue;
            }

            text.Append(chat ? choice["delta"]?["content"]?.GetValue<string>() : choice["text"]?.GetValue<string>());
            finish = choice["finish_reason"]?.GetValue<string>() ?? finish;
            int tokens = (chat ? choice["logprobs"]?["content"] : choice["logprobs"]?["tokens"]) is JsonArray list ? list.Count : 0;
            for (int i = 0; i < tokens; i++)
            {
                await onToken(++generated).ConfigureAwait(false);
            }
        }

        throw new ApplianceException($"the daemon at {_server} closed the stream before the generation finished");
    }

    public Task<JsonObject> TokenizeAsync(JsonObject request, CancellationToken cancellationToken) =>
        CallAsync(HttpMethod.Post, "tokenize", request, cancellationToken);

    public Task<JsonObject> ModelsAsync(CancellationToken cancellationToken) =>
        CallAsync(HttpMethod.Get, "v1/models", null, cancellationToken);

    public async Task<string> MetricsTextAsync(CancellationToken cancellationToken)
    {
        using var limit = Limited(cancellationToken);
        using var message = new HttpRequestMessage(HttpMethod.Get, "metrics");
        using HttpResponseMessage response = await SendAsync(message, HttpCompletionOption.ResponseContentRead, limit.Token).ConfigureAwait(false);
        return await response.Content.ReadAsStringAsync(limit.Token).ConfigureAwait(false);
    }

    public Task<JsonObject> DoctorAsync(CancellationToken cancellationToken) => _doctor(cancellationToken);

    /// <summary>The <c>/v1/models</c> entry and the daemon's <c>/health</c> (state, running, waiting, slots); the
    /// daemon's own <c>/mcp</c> resource has the architecture too.</summary>
    public async Task<JsonObject> ModelInfoAsync(CancellationToken cancellationToken)
    {
        JsonObject models = await ModelsAsync(cancellationToken).ConfigureAwait(false);
        var info = models["data"] is JsonArray { Count: > 0 } data && data[0] is JsonObject first ? (JsonObject)first.DeepClone() : [];
        info["health"] = await HealthAsync(cancellationToken).ConfigureAwait(false);
        return info;
    }

    /// <summary>The bridge's own settings and the daemon's health: the daemon's configuration is not part of its
    /// HTTP API (its <c>/mcp</c> endpoint serves it, redacted).</summary>
    public async Task<JsonObject> ConfigAsync(CancellationToken cancellationToken) => new()
    {
        ["bridge"] = new JsonObject
        {
            ["transport"] = "stdio",
            ["server"] = _server.ToString(),
            ["api_key"] = _hasKey ? ConfigJson.Redacted : null,
        },
        ["daemon_health"] = await HealthAsync(cancellationToken).ConfigureAwait(false),
        ["daemon_config"] = new Uri(_server, HaloMcp.Path.TrimStart('/')).ToString() + " (resource " + McpResources.ConfigUri + ")",
    };

    public void Dispose() => _http.Dispose();

    /// <summary>/health answers 503 with a body while loading or draining: that body is the answer.</summary>
    private async Task<JsonNode?> HealthAsync(CancellationToken cancellationToken)
    {
        using var limit = Limited(cancellationToken);
        try
        {
            using HttpResponseMessage response = await _http.GetAsync("health", limit.Token).ConfigureAwait(false);
            return JsonNode.Parse(await response.Content.ReadAsStringAsync(limit.Token).ConfigureAwait(false));
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(e);
        }
        catch (JsonException e)
        {
            throw new ApplianceException($"the daemon at {_server} answered /health with something that is not JSON: {e.Message}");
        }
    }

    private async Task<JsonObject> CallAsync(HttpMethod method, string path, JsonObject? body, CancellationToken cancellationToken)
    {
        using var limit = Limited(cancellationToken);
        using var message = new HttpRequestMessage(method, path) { Content = body is null ? null : Json(body) };
        using HttpResponseMessage response = await SendAsync(message, HttpCompletionOption.ResponseContentRead, limit.Token).ConfigureAwait(false);
        string text = await response.Content.ReadAsStringAsync(limit.Token).ConfigureAwait(false);
        try
        {
            return JsonNode.Parse(text) as JsonObject ?? throw new ApplianceException($"the daemon answered {path} with no JSON object");
        }
        catch (JsonException e)
        {
            throw new ApplianceException($"the daemon answered {path} with something that is not JSON: {e.Message}");
        }
    }

    /// <summary>Sends; an error status becomes the daemon's own error message, an unreachable daemon says so.</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage message, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, completion, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(e);
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            string text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            string detail;
            try
            {
                detail = JsonNode.Parse(text)?["error"]?["message"]?.GetValue<string>() ?? text;
            }
            catch (JsonException)
            {
                detail = text;
            }

            int status = (int)response.StatusCode;
            string hint = status == 401 ? " (give the key with --api-key-file FILE or HALO_API_KEY)" : "";
            throw new ApplianceException($"the daemon answered {status}: {detail}{hint}");
        }
    }

    private ApplianceException Unreachable(HttpRequestException e) =>
        new($"cannot reach the Halo daemon at {_server}: {e.Message} (is halo-server running? systemctl status halo-server)");

    private static CancellationTokenSource Limited(CancellationToken cancellationToken)
    {
        var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(ShortCallLimit);
        return limit;
    }

    private static StringContent Json(JsonObject body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");
}
