using System.Net;
using Halo.Core.Configuration;
using Halo.Core.Formats;
using Halo.Server.Inference;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Halo.Server.Tests.Inference;

/// <summary>The daemon's start order: the model's preparation starts before the host is built, and the host's start
/// (after which systemd gets READY=1) still waits for it to load and warm up, or fails with its reason.</summary>
public sealed class ModelPreparationTests
{
    [Fact]
    public async Task Start_BeforeTheHost_HostStartWaitsForLoadAndWarmUp()
    {
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        using var gate = new ManualResetEventSlim(false);
        HaloOptions options = InProcessServer.DefaultOptions();
        var runtime = new ModelRuntime();
        var preparation = new ModelPreparation(options, new GatedLoader(gate), runtime, SystemdNotifiers.For(notify.Path), NullLogger.Instance);
        Task preparing = preparation.Start();
        using IHost host = HaloHost.CreateHostBuilder(options, preparation, NullLoggerFactory.Instance, []).Build();
        Task start = host.StartAsync();
        try
        {
            Uri url = await WaitForUrl(host);
            using var client = new HttpClient { BaseAddress = url };
            HttpStatusCode loading = (await client.GetAsync("health")).StatusCode;
            notify.WaitFor("STATUS=loading model", TimeSpan.FromSeconds(10));
            Assert.False(start.IsCompleted, "the host's start waits for the model");
            Assert.Same(preparing, preparation.Start());

            gate.Set();
            await start;

            Assert.Equal(HttpStatusCode.ServiceUnavailable, loading);
            Assert.True(preparing.IsCompletedSuccessfully);
            Assert.True(runtime.Scheduler!.Stats.GenerationTokensTotal >= 1, "the warm-up generation ran before the start completed");
            Assert.Equal(ServingState.Ready, runtime.State);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("health")).StatusCode);
            IReadOnlyList<string> lines = notify.Lines;
            Assert.True(IndexOf(lines, "STATUS=warming up") > IndexOf(lines, "STATUS=loading model"));
            Assert.True(IndexOf(lines, "STATUS=serving") > IndexOf(lines, "STATUS=warming up"));
        }
        finally
        {
            gate.Set();
            await start.ContinueWith(_ => { }, TaskScheduler.Default);
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Start_LoadFailsBeforeTheHostStarts_HostStartFailsWithTheReason()
    {
        HaloOptions options = InProcessServer.DefaultOptions();
        var preparation = new ModelPreparation(options, new FailingLoader(), new ModelRuntime(), SystemdNotifiers.For(""), NullLogger.Instance);
        Task preparing = preparation.Start();
        await preparing.ContinueWith(_ => { }, TaskScheduler.Default);
        using IHost host = HaloHost.CreateHostBuilder(options, preparation, NullLoggerFactory.Instance, []).Build();

        var error = await Assert.ThrowsAsync<InvalidModelException>(() => host.StartAsync());

        Assert.Equal("broken.gguf: not a GGUF file", error.Message);
        Assert.Equal(ServingState.Loading, preparation.Runtime.State);
    }

    private static async Task<Uri> WaitForUrl(IHost host)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(10))
        {
            if (HaloHost.ListeningUrls(host) is [string first, ..])
            {
                return new Uri(first + "/");
            }
        }

        throw new TimeoutException("the web server did not start listening");
    }

    private static int IndexOf(IReadOnlyList<string> lines, string prefix)
    {
        for (int i = 0; i < lines.Count; i++)
        {
            if (lines[i].StartsWith(prefix, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private sealed class FailingLoader : IModelLoader
    {
        public LoadedModel Load(HaloOptions options, Action<string> progress, ILogger logger, CancellationToken cancellationToken) =>
            throw new InvalidModelException("broken.gguf", "not a GGUF file");
    }
}
