using System.Net;
using System.Text;
using System.Text.Json;
using Halo.Core.Configuration;
using Halo.Server.Tests.Infrastructure;

namespace Halo.Server.Tests.OpenAi;

/// <summary>Every error case over raw HTTP: status, OpenAI error shape, a message naming the JSON path.</summary>
public sealed class ErrorResponseTests : IAsyncLifetime
{
    private InProcessServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await InProcessServer.StartAsync(InProcessServer.DefaultOptions(o => o with
        {
            Server = o.Server with { MaxBodyBytes = 4096 },
        }));

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<(HttpStatusCode Status, JsonElement Error, HttpResponseMessage Response)> Send(HttpMethod method, string path, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        HttpResponseMessage response = await _server.Client.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using JsonDocument json = JsonDocument.Parse(text);
        JsonElement error = json.RootElement.GetProperty("error").Clone();
        Assert.True(error.TryGetProperty("param", out _) && error.TryGetProperty("code", out _), text);
        return (response.StatusCode, error, response);
    }

    private Task<(HttpStatusCode Status, JsonElement Error, HttpResponseMessage Response)> Chat(string body) =>
        Send(HttpMethod.Post, "v1/chat/completions", body);

    [Theory]
    [InlineData("""{"messages": [{"role": "user", "content": 5}]}""", "$.messages[0].content: expected a string, got a number", "messages[0].content")]
    [InlineData("""{"messages": "not a list"}""", "$.messages: expected an array, got a string", "messages")]
    [InlineData("""{"model": "tiny"}""", "$.messages: required field missing (expected an array of messages)", "messages")]
    [InlineData("""{"messages": []}""", "$.messages: must hold at least one message", "messages")]
    [InlineData("""{"messages": [{"role": "wizard", "content": "hi"}]}""", "$.messages[0].role: 'wizard' is not one of system, developer, user, assistant, tool", "messages[0].role")]
    [InlineData("""{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}""", "$.messages[0].content[0].type: 'image_url' content is not supported by this model (text only)", "messages[0].content[0].type")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}""", "$.temperature: expected a number, got a string", "temperature")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "temperature": 3}""", "$.temperature: 3 is out of range (expected 0 to 2)", "temperature")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}""", "$.max_tokens: 0 is out of range (expected 1 to 9223372036854775807)", "max_tokens")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1.5}""", "$.max_tokens: expected an integer, got a number", "max_tokens")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "stop": [1]}""", "$.stop[0]: expected a string, got a number", "stop[0]")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}""", "$.top_logprobs: requires logprobs to be true", "top_logprobs")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "n": 2}""", "$.n: only n = 1 is supported (one choice per request)", "n")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": true}}""", "$.stream_options: only allowed when stream is true", "stream_options")]
    [InlineData("""[1, 2]""", "$: expected a JSON object, got an array", null)]
    public async Task Chat_InvalidField_400NamesTheJsonPath(string body, string message, string? param)
    {
        var (status, error, _) = await Chat(body);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(message, error.GetProperty("message").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Chat_TruncatedJson_400SaysWhereItBroke()
    {
        var (status, error, _) = await Chat("""{"model": "x", "messages": [""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.StartsWith("$: the body is not valid JSON at line 1, byte", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_BodyOverLimit_413()
    {
        string big = $$"""{"messages": [{"role": "user", "content": "{{new string('a', 8000)}}"}]}""";

        var (status, error, _) = await Chat(big);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("request_too_large", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Chat_ChunkedBodyOverLimit_413()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(new string(' ', 10000) + "{}"))),
        };
        request.Headers.TransferEncodingChunked = true;

        using HttpResponseMessage response = await _server.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task Chat_UnknownModel_404ModelNotFound()
    {
        var (status, error, _) = await Chat("""{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}""");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("not_found_error", error.GetProperty("type").GetString());
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Chat_PromptLongerThanContext_400ContextLengthExceeded()
    {
        string content = string.Concat(Enumerable.Repeat("word ", 700));
        var (status, error, _) = await Send(HttpMethod.Post, "v1/completions", $$"""{"prompt": "{{content}}", "max_tokens": 1}""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.True(_server.Runtime.State == Halo.Server.Inference.ServingState.Ready);
    }

    [Fact]
    public async Task Detokenize_IdOutsideVocabulary_400NamesTheElement()
    {
        var (status, error, _) = await Send(HttpMethod.Post, "detokenize", """{"tokens": [1, 2, 99999999]}""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.StartsWith("$.tokens[2]: token id 99999999 is outside the vocabulary", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownPath_404AndWrongMethod_405_BothWithErrorBodies()
    {
        var (notFound, error404, _) = await Send(HttpMethod.Get, "v1/nothing");
        var (notAllowed, error405, _) = await Send(HttpMethod.Delete, "v1/chat/completions");

        Assert.Equal(HttpStatusCode.NotFound, notFound);
        Assert.Equal("not_found_error", error404.GetProperty("type").GetString());
        Assert.Equal(HttpStatusCode.MethodNotAllowed, notAllowed);
        Assert.Contains("DELETE", error405.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_EdgeSamplingValues_AnsweredNotCrashed()
    {
        foreach (string extra in new[] { "\"top_p\": 0", "\"top_k\": 0, \"min_p\": 1", "\"temperature\": 0, \"seed\": -1", "\"presence_penalty\": -2, \"frequency_penalty\": 2" })
        {
            using HttpResponseMessage response = await _server.Client.PostAsync("v1/chat/completions", new StringContent(
                $$"""{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, {{extra}}}"""));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task BadInput_Barrage_ServerStaysHealthy()
    {
        string[] bodies = ["", "null", "{", "\"str\"", "{\"messages\": [null]}", "{\"messages\": [{\"role\": null}]}", "{\"prompt\": {}}", new string('[', 5000)];
        foreach (string body in bodies)
        {
            using HttpResponseMessage chat = await _server.Client.PostAsync("v1/chat/completions", new StringContent(body));
            using HttpResponseMessage completions = await _server.Client.PostAsync("v1/completions", new StringContent(body));
            Assert.True((int)chat.StatusCode is >= 400 and < 500, $"{body[..Math.Min(body.Length, 20)]}: {chat.StatusCode}");
            Assert.True((int)completions.StatusCode is >= 400 and < 500, $"{body[..Math.Min(body.Length, 20)]}: {completions.StatusCode}");
        }

        using HttpResponseMessage health = await _server.Client.GetAsync("health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }
}

/// <summary>Queue limits and API keys need their own server configurations.</summary>
public sealed class AdmissionErrorTests
{
    [Fact]
    public async Task Chat_SlotsAndQueueFull_429WithRetryAfter()
    {
        await using InProcessServer server = await InProcessServer.StartAsync(InProcessServer.DefaultOptions(o => o with
        {
            Model = o.Model with { ContextLength = 16384 },
            Scheduler = o.Scheduler with { Slots = 1, QueueSize = 0 },
            Server = o.Server with { RetryAfterSeconds = 3 },
        }));
        // Long enough that the tiny model (thousands of tokens a second) still holds the slot for the second request.
        const string endless = """{"messages": [{"role": "user", "content": "hi"}], "stream": true, "ignore_eos": true}""";
        using var first = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(endless) };
        using HttpResponseMessage running = await server.Client.SendAsync(first, HttpCompletionOption.ResponseHeadersRead);

        using HttpResponseMessage refused = await server.Client.PostAsync("v1/chat/completions", new StringContent("""{"messages": [{"role": "user", "content": "hi"}]}"""));

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(3), refused.Headers.RetryAfter?.Delta);
        using JsonDocument json = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        Assert.Equal("rate_limit_error", json.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal("queue_full", json.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task ApiKeys_Configured_ProtectApiButNotPublicPaths()
    {
        await using InProcessServer server = await InProcessServer.StartAsync(InProcessServer.DefaultOptions(o => o with
        {
            Auth = o.Auth with { ApiKeys = ["sha256:" + ApiKeyHashes.Hash("s3cret-key")] },
        }));
        const string body = """{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}""";

        using HttpResponseMessage none = await server.Client.PostAsync("v1/chat/completions", new StringContent(body));
        using var wrongRequest = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        wrongRequest.Headers.Authorization = new("Bearer", "s3cret-kez");
        using HttpResponseMessage wrong = await server.Client.SendAsync(wrongRequest);
        using var rightRequest = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body) };
        rightRequest.Headers.Authorization = new("Bearer", "s3cret-key");
        using HttpResponseMessage right = await server.Client.SendAsync(rightRequest);
        using HttpResponseMessage health = await server.Client.GetAsync("health");
        using HttpResponseMessage metrics = await server.Client.GetAsync("metrics");

        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        using JsonDocument json = JsonDocument.Parse(await wrong.Content.ReadAsStringAsync());
        Assert.Equal("authentication_error", json.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
    }
}
