using Halo.Core.Configuration;
using Halo.Engine.Scheduling;
using Halo.Server.Hosting;
using Halo.Server.Inference;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;
using Microsoft.Extensions.Hosting.Systemd;

namespace Halo.Server.Tests.Hosting;

public sealed class WatchdogServiceTests
{
    [Fact]
    public async Task ExecuteAsync_EngineWedged_StopsPingingAndResumesWhenItMovesAgain()
    {
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        ISystemdNotifier notifier = SystemdNotifiers.For(notify.Path);
        HaloOptions options = InProcessServer.DefaultOptions();
        using LoadedModel model = new EngineModelLoader().Load(options, _ => { }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None);
        using var backend = new GatedBackend(model.Backend);
        using var scheduler = new BatchScheduler(backend, options.Scheduler, model.Samplers);
        var runtime = new ModelRuntime();
        runtime.SetLoaded(model, scheduler, 0);
        using var watchdog = new WatchdogService(notifier, runtime, TimeSpan.FromSeconds(1));
        await watchdog.StartAsync(CancellationToken.None);

        await Task.Delay(2600);
        int healthy = Pings(notify);

        backend.Gate.Reset();
        backend.Entered.Reset();
        Assert.Equal(SubmitStatus.Accepted, scheduler.TrySubmit(new GenerationRequest { PromptTokens = [1, 2, 3], MaxTokens = 3 }, out GenerationStream? stuck));
        Assert.True(backend.Entered.Wait(TimeSpan.FromSeconds(20)), "the loop entered the forward pass");
        await Task.Delay(600);   // a ping decided just before the wedge may still be on its way
        int atWedge = Pings(notify);
        await Task.Delay(2500);
        int whileWedged = Pings(notify) - atWedge;

        backend.Gate.Set();
        await stuck!.WaitForFinishAsync(CancellationToken.None);
        await Task.Delay(2100);
        int afterRecovery = Pings(notify) - atWedge - whileWedged;
        await watchdog.StopAsync(CancellationToken.None);

        Assert.True(healthy >= 3, $"{healthy} pings in 2.6 s while healthy");
        Assert.Equal(0, whileWedged);
        Assert.True(afterRecovery >= 2, $"{afterRecovery} pings after recovery");
    }

    private static int Pings(NotifySocket notify) => notify.Messages.Count(m => m.Message == "WATCHDOG=1");
}
