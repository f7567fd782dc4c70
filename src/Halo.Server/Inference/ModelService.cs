using Halo.Core.Configuration;
using Halo.Engine.Scheduling;
using Halo.Server.Hosting;
using Halo.Server.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Inference;

/// <summary>
/// Waits, at the host's start, for the model to be loaded and warm (<see cref="ModelPreparation"/>, which the daemon
/// starts before the host is built; in a host built alone this service starts it). It is registered after the web
/// server, so the server already answers <c>/health</c> with 503 while the model loads; the host's start (and so
/// systemd's READY=1, which Microsoft.Extensions.Hosting.Systemd sends when the host has started) waits for it. On
/// SIGTERM it stops new generations, lets running ones finish within <c>server.drain_timeout_seconds</c>, then cuts
/// the rest, before the web server stops.
/// </summary>
internal sealed class ModelService(
    HaloOptions options,
    ModelPreparation preparation,
    ModelRuntime runtime,
    HaloMetrics metrics,
    PassedSockets passedSockets,
    ILogger<ModelService> logger) : IHostedService
{
    private static readonly TimeSpan CutGrace = TimeSpan.FromSeconds(5);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (passedSockets.Fds.Count > 0)
        {
            Log.SocketActivation(logger, passedSockets.Fds.Count);
        }

        using (cancellationToken.Register(preparation.Cancel))
        {
            await preparation.Start().WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        LoadedModel model = runtime.Model!;
        BatchScheduler scheduler = runtime.Scheduler!;
        double seconds = preparation.ElapsedSeconds;
        runtime.SetLoaded(model, scheduler, seconds);
        metrics.ModelLoadSeconds.Set(seconds);
        metrics.ModelInfo.WithLabels(model.Id, model.Backend.Info.Name, model.Backend.Info.Device).Set(1);
        Log.ModelLoaded(logger, model.Id, model.Backend.Info.Name, model.Backend.Info.Device, seconds, scheduler.SlotCount, scheduler.ContextLength);
        runtime.SetReady();
        preparation.Status($"serving {model.Id} ({model.Backend.Info.Name}, {scheduler.SlotCount} slots)");
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        runtime.SetDraining();
        if (runtime.Scheduler is not { } scheduler)
        {
            return;
        }

        int inFlight = scheduler.Stats.Running + scheduler.Stats.Waiting;
        TimeSpan drain = TimeSpan.FromSeconds(options.Server.DrainTimeoutSeconds);
        preparation.Status($"draining: {inFlight} generations in flight");
        Log.Draining(logger, inFlight, drain.TotalSeconds);
        scheduler.BeginDrain();
        Task finished = await Task.WhenAny(scheduler.WhenDrained, Task.Delay(drain, CancellationToken.None)).ConfigureAwait(false);
        if (finished != scheduler.WhenDrained)
        {
            Log.DrainTimeout(logger, scheduler.Stats.Running + scheduler.Stats.Waiting);
            scheduler.CancelAll();

            // Cut generations leave at the serving loop's next turn; a loop stuck inside the engine never takes it.
            // The stop stays bounded: say so and exit anyway (the loop's thread does not hold the process).
            Task cut = await Task.WhenAny(scheduler.WhenDrained, Task.Delay(CutGrace, CancellationToken.None)).ConfigureAwait(false);
            if (cut != scheduler.WhenDrained)
            {
                Log.LoopWedged(logger, CutGrace.TotalSeconds);
                preparation.Status("stopping (serving loop stuck in the engine)");
                return;
            }
        }

        Log.Drained(logger);
        preparation.Status("stopping");
    }
}
