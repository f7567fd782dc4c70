using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Halo.Engine.Scheduling;
using Halo.Server.Mcp;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Halo.Server.Tests.Mcp;

/// <summary>The daemon's <c>/mcp</c> (streamable HTTP) driven by the SDK's own client.</summary>
public sealed class DaemonMcpTests(McpDaemonFixture fixture) : IClassFixture<McpDaemonFixture>
{
    private McpDaemon Daemon => fixture.Daemon;

    [Fact]
    public async Task ListTools_WithKey_ListsEveryToolWithAnObjectSchema()
    {
        await using McpClient client = await Daemon.ConnectAsync();

        IList<McpClientTool> tools = await client.ListToolsAsync(cancellationToken: McpDaemon.Timeout(30));

        Assert.Equal(["doctor", "generate", "metrics", "models_list", "tokenize"], tools.Select(t => t.Name).Order());
        foreach (McpClientTool tool in tools)
        {
            Assert.Equal("object", tool.JsonSchema.GetProperty("type").GetString());
            Assert.False(string.IsNullOrWhiteSpace(tool.Description));
        }

        JsonElement generate = tools.Single(t => t.Name == "generate").JsonSchema.GetProperty("properties");
        foreach (string property in new[] { "prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop" })
        {
            Assert.True(generate.TryGetProperty(property, out _), property);
        }
    }

    [Fact]
    public async Task CallTool_GenerateWithPrompt_RunsThroughTheSchedulerAndCountsTokens()
    {
        await using McpClient client = await Daemon.ConnectAsync();
        long before = Daemon.Runtime.Scheduler!.Stats.GenerationTokensTotal;

        CallToolResult result = await client.CallToolAsync("generate", McpArgs.Of("""{"prompt": "Hello", "max_tokens": 6, "temperature": 0}"""), cancellationToken: McpDaemon.Timeout(60));

        JsonElement answer = McpArgs.Structured(result);
        Assert.Equal("tiny", answer.GetProperty("model").GetString());
        int completion = answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        Assert.InRange(completion, 1, 6);
        Assert.Equal(completion == 6 ? "length" : "stop", answer.GetProperty("finish_reason").GetString());
        Assert.Equal(answer.GetProperty("text").GetString(), McpArgs.Text(result));
        Assert.True(answer.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() >= 2);
        Assert.True(Daemon.Runtime.Scheduler!.Stats.GenerationTokensTotal - before >= completion);
    }

    [Fact]
    public async Task CallTool_GenerateWithMessagesAndSeed_IsReproducible()
    {
        await using McpClient client = await Daemon.ConnectAsync();
        var arguments = McpArgs.Of("""
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
             "max_tokens": 5, "temperature": 0.8, "top_k": 40, "top_p": 0.9, "seed": 42}
            """);

        JsonElement first = McpArgs.Structured(await client.CallToolAsync("generate", arguments, cancellationToken: McpDaemon.Timeout(60)));
        JsonElement second = McpArgs.Structured(await client.CallToolAsync("generate", arguments, cancellationToken: McpDaemon.Timeout(60)));

        Assert.Equal(first.GetProperty("text").GetString(), second.GetProperty("text").GetString());
        Assert.True(first.GetProperty("usage").GetProperty("completion_tokens").GetInt32() >= 1);
    }

    [Fact]
    public async Task CallTool_TokenizeTextAndMessages_MatchesTheTokenizeEndpoint()
    {
        await using McpClient client = await Daemon.ConnectAsync();
        using var http = AuthorizedHttp();
        using HttpResponseMessage direct = await http.PostAsync("tokenize", new StringContent("""{"content": "Hello world"}""", Encoding.UTF8, "application/json"));
        using JsonDocument expected = JsonDocument.Parse(await direct.Content.ReadAsStringAsync());

        JsonElement text = McpArgs.Structured(await client.CallToolAsync("tokenize", McpArgs.Of("""{"text": "Hello world"}"""), cancellationToken: McpDaemon.Timeout(30)));
        JsonElement noBos = McpArgs.Structured(await client.CallToolAsync("tokenize", McpArgs.Of("""{"text": "Hello world", "add_special": false}"""), cancellationToken: McpDaemon.Timeout(30)));
        JsonElement chat = McpArgs.Structured(await client.CallToolAsync("tokenize", McpArgs.Of("""{"messages": [{"role": "user", "content": "Hello world"}]}"""), cancellationToken: McpDaemon.Timeout(30)));

        Assert.Equal(expected.RootElement.GetProperty("tokens").GetRawText(), text.GetProperty("tokens").GetRawText());
        Assert.Equal(text.GetProperty("count").GetInt32() - 1, noBos.GetProperty("count").GetInt32());
        Assert.True(chat.GetProperty("count").GetInt32() > text.GetProperty("count").GetInt32());
        Assert.Equal(512, text.GetProperty("max_model_len").GetInt32());
    }

    [Fact]
    public async Task CallTool_ModelsListDoctorMetrics_AnswerStructuredContent()
    {
        await using McpClient client = await Daemon.ConnectAsync();
        McpArgs.Structured(await client.CallToolAsync("generate", McpArgs.Of("""{"prompt": "Hi", "max_tokens": 3}"""), cancellationToken: McpDaemon.Timeout(60)));

        JsonElement models = McpArgs.Structured(await client.CallToolAsync("models_list", cancellationToken: McpDaemon.Timeout(30)));
        JsonElement doctor = McpArgs.Structured(await client.CallToolAsync("doctor", cancellationToken: McpDaemon.Timeout(120)));
        JsonElement metrics = McpArgs.Structured(await client.CallToolAsync("metrics", cancellationToken: McpDaemon.Timeout(30)));

        JsonElement model = Assert.Single(models.GetProperty("data").EnumerateArray());
        Assert.Equal("tiny", model.GetProperty("id").GetString());
        Assert.True(model.GetProperty("random_weights").GetBoolean());

        Assert.True(doctor.GetProperty("checks").GetArrayLength() > 5);
        Assert.Contains(doctor.GetProperty("checks").EnumerateArray(), c => c.GetProperty("id").GetString() == "units.forbidden-runtime");
        Assert.True(doctor.GetProperty("summary").TryGetProperty("fail", out _));

        Assert.True(metrics.GetProperty("generation_tokens_total").GetDouble() >= 1);
        Assert.True(metrics.GetProperty("prompt_tokens_total").GetDouble() >= 1);
        Assert.True(metrics.GetProperty("requests_total").GetDouble() >= 1);
        Assert.Equal(0, metrics.GetProperty("requests_running").GetDouble());
        Assert.Equal(0, metrics.GetProperty("requests_waiting").GetDouble());
        JsonElement ttft = metrics.GetProperty("time_to_first_token_seconds");
        Assert.True(ttft.GetProperty("count").GetDouble() >= 1);
        Assert.True(ttft.GetProperty("mean").GetDouble() > 0);
    }

    [Theory]
    [InlineData("""{"prompt": "Hi", "messages": [{"role": "user", "content": "Hi"}]}""", "give either 'prompt' or 'messages', not both")]
    [InlineData("""{"max_tokens": 4}""", "missing 'prompt' or 'messages'")]
    [InlineData("""{"prompt": "Hi", "temperature": 7}""", "temperature")]
    [InlineData("""{"prompt": "Hi", "max_tokens": "many"}""", "max_tokens")]
    [InlineData("""{"prompt": "Hi", "max_tokens": 0}""", "max_tokens")]
    [InlineData("""{"prompt": "Hi", "stream": true}""", "unknown argument 'stream'")]
    [InlineData("""{"messages": [{"role": "wizard", "content": "Hi"}]}""", "wizard")]
    [InlineData("""{"messages": []}""", "messages")]
    public async Task CallTool_GenerateWithBadArguments_ReturnsOneClearToolError(string arguments, string expected)
    {
        await using McpClient client = await Daemon.ConnectAsync();

        CallToolResult result = await client.CallToolAsync("generate", McpArgs.Of(arguments), cancellationToken: McpDaemon.Timeout(30));

        Assert.True(result.IsError);
        string message = McpArgs.Text(result);
        Assert.StartsWith("generate: ", message, StringComparison.Ordinal);
        Assert.Contains(expected, message, StringComparison.Ordinal);
        Assert.True(await Daemon.WaitIdleAsync(TimeSpan.FromSeconds(5)));
    }

    [Theory]
    [InlineData("tokenize", """{"text": 5}""", "$.text")]
    [InlineData("tokenize", """{}""", "missing 'text' or 'messages'")]
    [InlineData("models_list", """{"verbose": true}""", "takes no arguments")]
    [InlineData("metrics", """{"x": 1}""", "takes no arguments")]
    public async Task CallTool_OtherToolsWithBadArguments_ReturnToolErrors(string tool, string arguments, string expected)
    {
        await using McpClient client = await Daemon.ConnectAsync();

        CallToolResult result = await client.CallToolAsync(tool, McpArgs.Of(arguments), cancellationToken: McpDaemon.Timeout(30));

        Assert.True(result.IsError);
        Assert.Contains(expected, McpArgs.Text(result), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CallTool_UnknownTool_IsAProtocolErrorNamingTheTools()
    {
        await using McpClient client = await Daemon.ConnectAsync();

        var error = await Assert.ThrowsAsync<McpProtocolException>(() => client.CallToolAsync("rm_rf", cancellationToken: McpDaemon.Timeout(30)).AsTask());

        Assert.Equal(McpErrorCode.InvalidParams, error.ErrorCode);
        Assert.Contains("generate, tokenize", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CallTool_UnknownTool_LogsNoErrorAndNoStackTrace()
    {
        await using McpClient client = await Daemon.ConnectAsync();

        await Assert.ThrowsAsync<McpProtocolException>(() => client.CallToolAsync("no_such_tool", cancellationToken: McpDaemon.Timeout(30)).AsTask());

        // A client naming a tool that does not exist is the client's mistake: nothing at warning or above, no exception.
        Assert.DoesNotContain(Daemon.Log.Entries, e => (e.Message.Contains("no_such_tool", StringComparison.Ordinal)
            || e.Exception?.Message.Contains("no_such_tool", StringComparison.Ordinal) == true) && (e.Level >= LogLevel.Warning || e.Exception is not null));
    }

    [Fact]
    public void Names_MatchTheListedTools()
    {
        Assert.Equal(McpTools.List().Select(t => t.Name), McpTools.Names);
    }

    [Fact]
    public async Task Post_WithoutOrWithWrongKey_Is401AndTheClientCannotConnect()
    {
        using var http = new HttpClient { BaseAddress = Daemon.BaseAddress };
        const string initialize = """{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}""";

        using var anonymous = new HttpRequestMessage(HttpMethod.Post, "mcp") { Content = new StringContent(initialize, Encoding.UTF8, "application/json") };
        anonymous.Headers.Accept.ParseAdd("application/json, text/event-stream");
        using HttpResponseMessage noKey = await http.SendAsync(anonymous);
        using var wrong = new HttpRequestMessage(HttpMethod.Post, "mcp") { Content = new StringContent(initialize, Encoding.UTF8, "application/json") };
        wrong.Headers.Accept.ParseAdd("application/json, text/event-stream");
        wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "not-the-key");
        using HttpResponseMessage wrongKey = await http.SendAsync(wrong);

        Assert.Equal(HttpStatusCode.Unauthorized, noKey.StatusCode);
        Assert.Contains("authentication_error", await noKey.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
        await Assert.ThrowsAnyAsync<Exception>(() => Daemon.ConnectAsync(apiKey: null));
        await Assert.ThrowsAnyAsync<Exception>(() => Daemon.ConnectAsync(apiKey: "not-the-key"));
    }

    [Fact]
    public async Task ReadResource_ModelAndConfig_DescribeTheModelAndRedactKeys()
    {
        await using McpClient client = await Daemon.ConnectAsync();

        IList<McpClientResource> resources = await client.ListResourcesAsync(cancellationToken: McpDaemon.Timeout(30));
        ReadResourceResult model = await client.ReadResourceAsync("halo://model", cancellationToken: McpDaemon.Timeout(30));
        ReadResourceResult config = await client.ReadResourceAsync("halo://config", cancellationToken: McpDaemon.Timeout(30));

        Assert.Equal(["halo://config", "halo://model"], resources.Select(r => r.Uri).Order());
        using JsonDocument modelJson = JsonDocument.Parse(Assert.IsType<TextResourceContents>(Assert.Single(model.Contents)).Text);
        Assert.Equal("tiny", modelJson.RootElement.GetProperty("id").GetString());
        Assert.Equal(256, modelJson.RootElement.GetProperty("hidden_size").GetInt32());
        Assert.Equal(4, modelJson.RootElement.GetProperty("slots").GetInt32());
        string configText = Assert.IsType<TextResourceContents>(Assert.Single(config.Contents)).Text;
        using JsonDocument configJson = JsonDocument.Parse(configText);
        Assert.Equal("(redacted)", configJson.RootElement.GetProperty("auth").GetProperty("api_keys")[0].GetString());
        Assert.DoesNotContain(Halo.Core.Configuration.ApiKeyHashes.Hash(McpDaemon.ApiKey), configText, StringComparison.Ordinal);
        Assert.Equal(4, configJson.RootElement.GetProperty("scheduler").GetProperty("slots").GetInt32());
        await Assert.ThrowsAsync<McpProtocolException>(() => client.ReadResourceAsync("halo://secrets", cancellationToken: McpDaemon.Timeout(30)).AsTask());
    }

    [Fact]
    public async Task CallTool_GenerateCancelledMidway_ReportsProgressStopsAndFreesTheSlot()
    {
        await using McpClient client = await Daemon.ConnectAsync();
        SchedulerStats before = Daemon.Runtime.Scheduler!.Stats;
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var reports = new List<ProgressNotificationValue>();
        var progress = new SynchronousProgress(value =>
        {
            lock (reports)
            {
                reports.Add(value);
            }

            if (value.Progress >= 16)
            {
                cancel.Cancel();
            }
        });

        Task<CallToolResult> call = client.CallToolAsync("generate", McpArgs.Of("""{"prompt": "Once upon a time", "max_tokens": 400, "temperature": 0}"""), progress, cancellationToken: cancel.Token).AsTask();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.True(await Daemon.WaitIdleAsync(TimeSpan.FromSeconds(5)), "the slot was not freed");
        long generated = Daemon.Runtime.Scheduler!.Stats.GenerationTokensTotal - before.GenerationTokensTotal;
        Assert.InRange(generated, 16, 399);
        lock (reports)
        {
            Assert.Equal(8, reports[0].Progress);
            Assert.Equal(400, reports[0].Total);
            Assert.All(reports, r => Assert.Equal(0, r.Progress % 8));
        }

        // The same greedy request left alone runs all 400 tokens: the cancel, not the model, ended the first.
        JsonElement whole = McpArgs.Structured(await client.CallToolAsync("generate", McpArgs.Of("""{"prompt": "Once upon a time", "max_tokens": 400, "temperature": 0}"""), cancellationToken: McpDaemon.Timeout(60)));
        Assert.Equal("length", whole.GetProperty("finish_reason").GetString());
        Assert.Equal(400, whole.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task StopAsync_WithAConnectedClient_StopsWithinTheDrainTimeout()
    {
        McpDaemon daemon = await McpDaemon.StartAsync();
        McpClient client = await daemon.ConnectAsync();
        await client.ListToolsAsync(cancellationToken: McpDaemon.Timeout(30));
        var clock = System.Diagnostics.Stopwatch.StartNew();

        await daemon.DisposeAsync();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"stop took {clock.Elapsed.TotalSeconds:0.0} s with an MCP session open");
        await client.DisposeAsync();
    }

    private HttpClient AuthorizedHttp()
    {
        var http = new HttpClient { BaseAddress = Daemon.BaseAddress };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", McpDaemon.ApiKey);
        return http;
    }
}

/// <summary>IProgress that runs the callback on the reporting thread (Progress&lt;T&gt; posts to the pool, late).</summary>
internal sealed class SynchronousProgress(Action<ProgressNotificationValue> report) : IProgress<ProgressNotificationValue>
{
    public void Report(ProgressNotificationValue value) => report(value);
}
