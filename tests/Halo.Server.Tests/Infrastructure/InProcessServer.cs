using Halo.Core.Configuration;
using Halo.Server.Inference;
using Halo.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Halo.Server.Tests.Infrastructure;

/// <summary>The real host (Kestrel on 127.0.0.1:0, the real engine on the tiny model) inside the test process.</summary>
internal sealed class InProcessServer : IAsyncDisposable
{
    private readonly IHost _host;

    private InProcessServer(IHost host, HaloOptions options)
    {
        _host = host;
        Options = options;
        BaseAddress = new Uri(HaloHost.ListeningUrls(host)[0].Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/");
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public HaloOptions Options { get; }

    public Uri BaseAddress { get; }

    public HttpClient Client { get; }

    public ModelRuntime Runtime => _host.Services.GetRequiredService<ModelRuntime>();

    public IHost Host => _host;

    /// <summary>Options for the tiny model on an ephemeral loopback port; <paramref name="change"/> adjusts them.</summary>
    public static HaloOptions DefaultOptions(Func<HaloOptions, HaloOptions>? change = null)
    {
        var options = new HaloOptions
        {
            Server = new ServerOptions { Listen = [ListenAddress.Parse("127.0.0.1:0")], DrainTimeoutSeconds = 5 },
            // No repack cache: an in-process server runs under the real HOME (daemon process tests use a temp one).
            Model = new ModelOptions { Path = TinyModel.Path, Name = TinyModel.Id, Threads = 2, RepackCache = "off" },
            Scheduler = new SchedulerOptions { Slots = 4, QueueSize = 8, PrefillChunkTokens = 64 },
            Logging = new LoggingOptions { Level = "warning", Format = "console" },
        };
        return change is null ? options : change(options);
    }

    public static async Task<InProcessServer> StartAsync(HaloOptions? options = null, IModelLoader? loader = null)
    {
        options ??= DefaultOptions();
        IHost host = HaloHost.CreateHostBuilder(options, loader ?? new EngineModelLoader(), []).Build();
        await host.StartAsync();
        return new InProcessServer(host, options);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _host.StopAsync(TimeSpan.FromSeconds(20));
        _host.Dispose();
    }
}
