using System.Text.Json;
using Halo.Core.Configuration;
using Halo.Engine.Backends;
using Halo.Server.Inference;
using Halo.Server.Mcp;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Halo.Server.Tests.Mcp;

/// <summary>
/// The real daemon host in the test process (Kestrel on 127.0.0.1:0, the real engine on the tiny model) with an
/// API key, each forward pass slowed by <paramref name="stepDelay"/> so a generation can be caught mid-way, and
/// the doctor run as the real <c>halo doctor --json</c> against an empty fake root (fast, machine-independent).
/// </summary>
internal sealed class McpDaemon : IAsyncDisposable
{
    public const string ApiKey = "mcp-test-key";

    private readonly IHost _host;
    private readonly TempDir _root;

    private McpDaemon(IHost host, TempDir root, LogCapture log)
    {
        Log = log;
        _host = host;
        _root = root;
        BaseAddress = new Uri(HaloHost.ListeningUrls(host)[0].Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/");
    }

    /// <summary>halo.dll, built beside the tests (the test project references the CLI).</summary>
    public static string HaloDll => Path.Combine(AppContext.BaseDirectory, "halo.dll");

    public Uri BaseAddress { get; }

    /// <summary>What the host logged, after its level filters.</summary>
    public LogCapture Log { get; }

    public Uri McpEndpoint => new(BaseAddress, "mcp");

    public ModelRuntime Runtime => _host.Services.GetRequiredService<ModelRuntime>();

    public static async Task<McpDaemon> StartAsync(TimeSpan stepDelay = default)
    {
        var root = new TempDir();
        HaloOptions options = InProcessServer.DefaultOptions(o => o with
        {
            Auth = new AuthOptions { ApiKeys = [ApiKeyHashes.Hash(ApiKey)] },
        });
        var log = new LogCapture();
        IHost host = HaloHost.CreateHostBuilder(options, new ThrottledLoader(stepDelay), [])
            .ConfigureLogging(logging => logging.AddProvider(log))
            .ConfigureServices(services => services.AddSingleton(new DoctorCommandLine("dotnet", [HaloDll, "doctor", "--json", "--root", root.Path])))
            .Build();
        await host.StartAsync();
        return new McpDaemon(host, root, log);
    }

    /// <summary>The SDK's own client over streamable HTTP, with the key unless told otherwise.</summary>
    public Task<McpClient> ConnectAsync(string? apiKey = ApiKey)
    {
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = McpEndpoint,
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = apiKey is null ? null : new Dictionary<string, string> { ["Authorization"] = "Bearer " + apiKey },
        });
        return McpClient.CreateAsync(transport, cancellationToken: Timeout(30));
    }

    /// <summary>Waits until no generation holds a slot or waits for one.</summary>
    public async Task<bool> WaitIdleAsync(TimeSpan limit)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            var stats = Runtime.Scheduler!.Stats;
            if (stats.Running == 0 && stats.Waiting == 0)
            {
                return true;
            }

            await Task.Delay(20);
        }

        return false;
    }

    public static CancellationToken Timeout(int seconds) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync(TimeSpan.FromSeconds(20));
        _host.Dispose();
        _root.Dispose();
    }
}

/// <summary>Tool arguments from JSON text, as an agent sends them.</summary>
internal static class McpArgs
{
    public static Dictionary<string, object?> Of(string json)
    {
        var arguments = new Dictionary<string, object?>();
        using JsonDocument document = JsonDocument.Parse(json);
        foreach (JsonProperty property in document.RootElement.EnumerateObject())
        {
            arguments[property.Name] = property.Value.Clone();
        }

        return arguments;
    }

    public static string Text(CallToolResult result) => Assert.IsType<TextContentBlock>(Assert.Single(result.Content)).Text;

    public static JsonElement Structured(CallToolResult result)
    {
        Assert.True(result.IsError is null or false, "tool error: " + (result.Content.Count > 0 ? Text(result) : ""));
        return Assert.NotNull(result.StructuredContent);
    }
}

/// <summary>The real loader; its backend sleeps before every forward pass.</summary>
internal sealed class ThrottledLoader(TimeSpan stepDelay) : IModelLoader
{
    public LoadedModel Load(HaloOptions options, Action<string> progress, Microsoft.Extensions.Logging.ILogger logger, CancellationToken cancellationToken)
    {
        LoadedModel model = new EngineModelLoader().Load(options, progress, logger, cancellationToken);
        if (stepDelay <= TimeSpan.Zero)
        {
            return model;
        }

        return new LoadedModel
        {
            Id = model.Id,
            Path = model.Path,
            Backend = new ThrottledBackend(model.Backend, stepDelay),
            Tokenizer = model.Tokenizer,
            Samplers = model.Samplers,
            RandomWeights = model.RandomWeights,
            Owner = model.Owner,
        };
    }
}

internal sealed class ThrottledBackend(IBackend inner, TimeSpan stepDelay) : IBackend
{
    public BackendInfo Info => inner.Info;

    public Halo.Core.Models.ModelConfig Config => inner.Config;

    public int MaxSlots => inner.MaxSlots;

    public int ContextLength => inner.ContextLength;

    public void Forward(ReadOnlySpan<SequenceChunk> chunks, Span<float> logits)
    {
        Thread.Sleep(stepDelay);
        inner.Forward(chunks, logits);
    }

    public void Dispose() => inner.Dispose();
}

/// <summary>One daemon for a test class (tests in a class run one at a time, so slot counts are theirs).</summary>
public sealed class McpDaemonFixture : IAsyncLifetime
{
    internal McpDaemon Daemon { get; private set; } = null!;

    /// <summary>10 ms a step leaves a cancelled 400-token generation about 4 s to reach the daemon through
    /// <c>halo mcp</c> and HTTP on a loaded 2-core machine (it once took 1.7 s).</summary>
    public async Task InitializeAsync() => Daemon = await McpDaemon.StartAsync(TimeSpan.FromMilliseconds(10));

    public async Task DisposeAsync() => await Daemon.DisposeAsync();
}
