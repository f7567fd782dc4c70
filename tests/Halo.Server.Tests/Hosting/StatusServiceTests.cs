using Halo.Core.Configuration;
using Halo.Engine.Scheduling;
using Halo.Server.Hosting;
using Halo.Server.Inference;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;
using Microsoft.Extensions.Hosting.Systemd;

namespace Halo.Server.Tests.Hosting;

public sealed class StatusServiceTests
{
    [Fact]
    public void Serving_Load_NamesModelBackendSlotsThroughputAndTotal()
    {
        var stats = new SchedulerStats(Running: 3, Waiting: 1, PromptTokensTotal: 10, GenerationTokensTotal: 12345, Steps: 0, DecodeSteps: 0,
            DecodeStepAllocatedBytes: 0, BusyTicks: 0, ForwardTicks: 0, KvCacheUsage: 0);

        string status = StatusService.Serving("2b", "cpu", 8, stats, 41.46, TimeSpan.FromSeconds(30));

        Assert.Equal("serving 2b on cpu: 3/8 slots busy, 1 waiting, 41.5 tok/s over the last 30 s, 12345 tokens generated", status);
    }

    [Fact]
    public async Task ExecuteAsync_WhileGenerating_SendsStatusWithTokensPerSecondOverTheRealSocket()
    {
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        ISystemdNotifier notifier = SystemdNotifiers.For(notify.Path);
        HaloOptions options = InProcessServer.DefaultOptions();
        using LoadedModel model = new EngineModelLoader().Load(options, _ => { }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None);
        using var scheduler = new BatchScheduler(model.Backend, options.Scheduler, model.Samplers);
        var runtime = new ModelRuntime();
        runtime.SetLoaded(model, scheduler, 0);
        runtime.SetReady();
        using var status = new StatusService(notifier, runtime, TimeSpan.FromMilliseconds(300));
        await status.StartAsync(CancellationToken.None);
        // ExecuteAsync runs on the thread pool (.NET 10) and counts the tokens so far when it starts; the tiny model
        // makes 200 tokens in a few milliseconds, so let it start first or the whole generation is its baseline.
        await Task.Delay(200);

        Assert.Equal(SubmitStatus.Accepted, scheduler.TrySubmit(new GenerationRequest { PromptTokens = [1, 2, 3], MaxTokens = 200 }, out GenerationStream? generation));
        await generation!.WaitForFinishAsync(CancellationToken.None);
        // The timer ticks every 0.3 s, but a loaded machine can delay ticks and the socket's reader: wait (at most
        // 10 s) for the line that has seen all 200 tokens.
        for (int i = 0; i < 200 && !notify.Messages.Any(m => m.Message.EndsWith("200 tokens generated", StringComparison.Ordinal)); i++)
        {
            await Task.Delay(50);
        }

        await status.StopAsync(CancellationToken.None);

        string[] lines = notify.Messages.Select(m => m.Message).Where(m => m.StartsWith("STATUS=", StringComparison.Ordinal)).ToArray();
        Assert.Contains(lines, l => l.StartsWith($"STATUS=serving {model.Id} on cpu: ", StringComparison.Ordinal) && l.Contains($"/{scheduler.SlotCount} slots busy", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(" tok/s over the last 0.3 s", StringComparison.Ordinal) && !l.Contains(" 0.0 tok/s", StringComparison.Ordinal));
        Assert.EndsWith("200 tokens generated", lines[^1], StringComparison.Ordinal);
    }
}
