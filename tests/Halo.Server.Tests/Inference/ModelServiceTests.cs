using System.Diagnostics;
using Halo.Core.Configuration;
using Halo.Engine.Scheduling;
using Halo.Server.Inference;
using Halo.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Tests.Inference;

public sealed class ModelServiceTests
{
    [Fact]
    public async Task StopAsync_EngineWedgedPastTheDrainTimeout_StopsWithinTheBoundAndSaysWhy()
    {
        var loader = new GatedBackendLoader();
        HaloOptions options = InProcessServer.DefaultOptions(o => o with { Server = o.Server with { DrainTimeoutSeconds = 1 } });
        var log = new LogCapture();
        using IHost host = HaloHost.CreateHostBuilder(options, loader, []).ConfigureLogging(l => l.AddProvider(log)).Build();
        await host.StartAsync();
        GatedBackend backend = loader.Backend!;
        BatchScheduler scheduler = host.Services.GetRequiredService<ModelRuntime>().Scheduler!;

        backend.Gate.Reset();
        backend.Entered.Reset();
        Assert.Equal(SubmitStatus.Accepted, scheduler.TrySubmit(new GenerationRequest { PromptTokens = [1, 2, 3], MaxTokens = 50 }, out GenerationStream? stuck));
        Assert.True(backend.Entered.Wait(TimeSpan.FromSeconds(20)), "the loop entered the forward pass");
        var clock = Stopwatch.StartNew();
        await host.StopAsync();
        TimeSpan stopped = clock.Elapsed;
        backend.Gate.Set();
        await stuck!.WaitForFinishAsync(CancellationToken.None);

        // Drain timeout (1 s) plus the 5 s grace after cutting, not the host's own shutdown timeout or forever.
        Assert.InRange(stopped.TotalSeconds, 5.5, 10);
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("stuck in the engine", StringComparison.Ordinal) && e.Exception is null);
        Assert.DoesNotContain(log.Entries, e => e.Exception is TimeoutException);
    }

    private sealed class GatedBackendLoader : IModelLoader
    {
        public GatedBackend? Backend { get; private set; }

        public LoadedModel Load(HaloOptions options, Action<string> progress, ILogger logger, CancellationToken cancellationToken)
        {
            LoadedModel model = new EngineModelLoader().Load(options, progress, logger, cancellationToken);
            Backend = new GatedBackend(model.Backend);
            return new LoadedModel
            {
                Id = model.Id,
                Path = model.Path,
                Backend = Backend,
                Tokenizer = model.Tokenizer,
                Samplers = model.Samplers,
                RandomWeights = model.RandomWeights,
                Owner = model,
            };
        }
    }
}
