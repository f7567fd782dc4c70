using System.Diagnostics;
using System.Text.Json;
using Halo.Engine.Scheduling;
using Halo.Testing;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Halo.Server.Tests.Mcp;

/// <summary><c>halo mcp</c> as a real child process (<c>dotnet halo.dll mcp --server URL</c>) driven over stdio by the
/// SDK's own client, forwarding to the real daemon.</summary>
public sealed class StdioMcpTests(McpDaemonFixture fixture) : IClassFixture<McpDaemonFixture>, IDisposable
{
    private readonly TempDir _dir = new();
    private readonly List<string> _stderr = [];

    private McpDaemon Daemon => fixture.Daemon;

    [Fact]
    public async Task ListTools_OverStdio_ListsTheToolsOfTheDaemon()
    {
        await using McpClient client = await StartAsync();

        IList<McpClientTool> tools = await client.ListToolsAsync(cancellationToken: McpDaemon.Timeout(30));

        Assert.Equal("halo", client.ServerInfo?.Name);
        Assert.Equal(["doctor", "generate", "metrics", "models_list", "tokenize"], tools.Select(t => t.Name).Order());
    }

    [Fact]
    public async Task CallTool_EachTool_ForwardsToTheDaemon()
    {
        await using McpClient client = await StartAsync();
        long before = Daemon.Runtime.Scheduler!.Stats.GenerationTokensTotal;

        JsonElement prompt = McpArgs.Structured(await client.CallToolAsync("generate", McpArgs.Of("""{"prompt": "Hello", "max_tokens": 7, "temperature": 0}"""), cancellationToken: McpDaemon.Timeout(60)));
        JsonElement chat = McpArgs.Structured(await client.CallToolAsync("generate", McpArgs.Of("""{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "seed": 3}"""), cancellationToken: McpDaemon.Timeout(60)));
        JsonElement tokens = McpArgs.Structured(await client.CallToolAsync("tokenize", McpArgs.Of("""{"text": "Hello world"}"""), cancellationToken: McpDaemon.Timeout(30)));
        JsonElement models = McpArgs.Structured(await client.CallToolAsync("models_list", cancellationToken: McpDaemon.Timeout(30)));
        JsonElement metrics = McpArgs.Structured(await client.CallToolAsync("metrics", cancellationToken: McpDaemon.Timeout(30)));
        JsonElement doctor = McpArgs.Structured(await client.CallToolAsync("doctor", cancellationToken: McpDaemon.Timeout(120)));

        Assert.Equal("tiny", prompt.GetProperty("model").GetString());
        int completion = prompt.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        Assert.InRange(completion, 1, 7);
        Assert.Equal(completion == 7 ? "length" : "stop", prompt.GetProperty("finish_reason").GetString());
        Assert.InRange(chat.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 4);
        Assert.True(Daemon.Runtime.Scheduler!.Stats.GenerationTokensTotal - before >= completion + 1, "the generations ran in the daemon");
        Assert.Equal(tokens.GetProperty("count").GetInt32(), tokens.GetProperty("tokens").GetArrayLength());
        Assert.Equal("tiny", models.GetProperty("data")[0].GetProperty("id").GetString());
        Assert.True(metrics.GetProperty("generation_tokens_total").GetDouble() >= completion);
        Assert.True(metrics.GetProperty("time_to_first_token_seconds").GetProperty("count").GetDouble() >= 2);
        Assert.True(doctor.GetProperty("checks").GetArrayLength() > 5);
    }

    [Theory]
    [InlineData("""{"prompt": "Hi", "temperature": 7}""", "the daemon answered 400: $.temperature")]
    [InlineData("""{"prompt": "Hi", "n": 2}""", "unknown argument 'n'")]
    [InlineData("""{}""", "missing 'prompt' or 'messages'")]
    public async Task CallTool_BadArguments_ReturnsOneClearToolError(string arguments, string expected)
    {
        await using McpClient client = await StartAsync();

        CallToolResult result = await client.CallToolAsync("generate", McpArgs.Of(arguments), cancellationToken: McpDaemon.Timeout(30));

        Assert.True(result.IsError);
        Assert.Contains(expected, McpArgs.Text(result), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CallTool_WrongKey_Says401AndHowToGiveTheKey()
    {
        await using McpClient client = await StartAsync(key: "not-the-key");

        CallToolResult result = await client.CallToolAsync("models_list", cancellationToken: McpDaemon.Timeout(30));

        Assert.True(result.IsError);
        Assert.Contains("the daemon answered 401: invalid API key", McpArgs.Text(result), StringComparison.Ordinal);
        Assert.Contains("--api-key-file", McpArgs.Text(result), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CallTool_DaemonNotRunning_SaysItCannotReachIt()
    {
        await using McpClient client = await StartAsync(server: "http://127.0.0.1:9/");

        CallToolResult result = await client.CallToolAsync("generate", McpArgs.Of("""{"prompt": "Hi"}"""), cancellationToken: McpDaemon.Timeout(30));

        Assert.True(result.IsError);
        Assert.Contains("cannot reach the Halo daemon at http://127.0.0.1:9/", McpArgs.Text(result), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadResource_OverStdio_ModelAndRedactedBridgeConfig()
    {
        await using McpClient client = await StartAsync();

        ReadResourceResult model = await client.ReadResourceAsync("halo://model", cancellationToken: McpDaemon.Timeout(30));
        ReadResourceResult config = await client.ReadResourceAsync("halo://config", cancellationToken: McpDaemon.Timeout(30));

        using JsonDocument modelJson = JsonDocument.Parse(Assert.IsType<TextResourceContents>(Assert.Single(model.Contents)).Text);
        Assert.Equal("tiny", modelJson.RootElement.GetProperty("id").GetString());
        Assert.Equal("ok", modelJson.RootElement.GetProperty("health").GetProperty("status").GetString());
        string configText = Assert.IsType<TextResourceContents>(Assert.Single(config.Contents)).Text;
        Assert.DoesNotContain(McpDaemon.ApiKey, configText, StringComparison.Ordinal);
        using JsonDocument configJson = JsonDocument.Parse(configText);
        Assert.Equal("(redacted)", configJson.RootElement.GetProperty("bridge").GetProperty("api_key").GetString());
    }

    [Fact]
    public async Task CallTool_GenerateCancelledMidway_StopsTheDaemonsGenerationAndFreesTheSlot()
    {
        await using McpClient client = await StartAsync();
        SchedulerStats before = Daemon.Runtime.Scheduler!.Stats;
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        float first = 0;
        var progress = new SynchronousProgress(value =>
        {
            if (first == 0)
            {
                first = value.Progress;
            }

            if (value.Progress >= 16)
            {
                cancel.Cancel();
            }
        });

        Task<CallToolResult> call = client.CallToolAsync("generate", McpArgs.Of("""{"prompt": "Once upon a time", "max_tokens": 400, "temperature": 0}"""), progress, cancellationToken: cancel.Token).AsTask();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.True(await Daemon.WaitIdleAsync(TimeSpan.FromSeconds(5)), "the daemon's slot was not freed");
        // Left alone, this greedy request runs all 400 tokens (DaemonMcpTests checks it): fewer means the cancel ended it.
        Assert.InRange(Daemon.Runtime.Scheduler!.Stats.GenerationTokensTotal - before.GenerationTokensTotal, 16, 399);
        Assert.Equal(8, first);
    }

    [Fact]
    public void Run_BadServerOrMissingKeyFile_ExitsWithUsageErrorAndKeepsStdoutClean()
    {
        (int badUrl, string badUrlOut, string badUrlErr) = Run("mcp", "--server", "ftp://example");
        (int noFile, string noFileOut, string noFileErr) = Run("mcp", "--api-key-file", _dir.File("absent"));

        Assert.Equal(2, badUrl);
        Assert.Equal("", badUrlOut);
        Assert.Contains("expected an http:// or https:// URL", badUrlErr, StringComparison.Ordinal);
        Assert.Equal(2, noFile);
        Assert.Equal("", noFileOut);
        Assert.Contains("no such file", noFileErr, StringComparison.Ordinal);
    }

    public void Dispose() => _dir.Dispose();

    private Task<McpClient> StartAsync(string? server = null, string key = McpDaemon.ApiKey)
    {
        string keyFile = _dir.File("key");
        File.WriteAllText(keyFile, "# the key for the test daemon\n\n" + key + "\n");
        var transport = new StdioClientTransport(new StdioClientTransportOptions
        {
            Command = "dotnet",
            Arguments = [McpDaemon.HaloDll, "mcp", "--server", server ?? Daemon.BaseAddress.ToString(), "--api-key-file", keyFile],
            Name = "halo",
            StandardErrorLines = line =>
            {
                lock (_stderr)
                {
                    _stderr.Add(line);
                }
            },
        });
        return McpClient.CreateAsync(transport, cancellationToken: McpDaemon.Timeout(60));
    }

    private static (int Exit, string Stdout, string Stderr) Run(params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(McpDaemon.HaloDll);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start)!;
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(60_000), "halo mcp did not exit");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
