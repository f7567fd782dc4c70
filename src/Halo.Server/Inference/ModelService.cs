using System.Diagnostics;
using Halo.Core.Configuration;
using Halo.Engine.Scheduling;
using Halo.Server.Hosting;
using Halo.Server.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Inference;

/// <summary>
/// Loads and warms the model on start, and drains on stop. It is registered after the web server, so the
/// server already answers <c>/health</c> with 503 while the model loads; the host's start (and so systemd's
/// READY=1, which Microsoft.Extensions.Hosting.Systemd sends when the host has started) waits for it. Long loads
/// keep asking systemd for more start time (EXTEND_TIMEOUT_USEC). On SIGTERM it stops new generations, lets
/// running ones finish within <c>server.drain_timeout_seconds</c>, then cuts the rest, before the web server stops.
/// </summary>
internal sealed class ModelService(
    HaloOptions options,
    IModelLoader loader,
    ModelRuntime runtime,
    HaloMetrics metrics,
    ISystemdNotifier notifier,
    PassedSockets passedSockets,
    ILogger<ModelService> logger) : IHostedService
{
    private static readonly TimeSpan ExtendEvery = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ExtendBy = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan CutGrace = TimeSpan.FromSeconds(5);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        if (passedSockets.Fds.Count > 0)
        {
            Log.SocketActivation(logger, passedSockets.Fds.Count);
        }

        using var extender = new Timer(_ => notifier.Notify(NotifyMessages.ExtendTimeout(ExtendBy)), null, TimeSpan.Zero, ExtendEvery);
        Status("loading model " + (options.Model.Path.Length > 0 ? options.Model.Path : options.Model.ModelsDir));
        Log.LoadingModel(logger, options.Model.Path.Length > 0 ? options.Model.Path : options.Model.ModelsDir);
        LoadedModel model = await Task.Run(() => loader.Load(options, Status, logger, cancellationToken), cancellationToken).ConfigureAwait(false);
        if (model.RandomWeights)
        {
            Log.RandomWeights(logger, model.Id);
        }

        BatchScheduler scheduler;
        try
        {
            scheduler = new BatchScheduler(model.Backend, options.Scheduler, model.Samplers);
        }
        catch
        {
            model.Dispose();
            throw;
        }

        runtime.SetLoaded(model, scheduler, 0);
        Status("warming up " + model.Id);
        await WarmUpAsync(model, scheduler, cancellationToken).ConfigureAwait(false);
        double seconds = clock.Elapsed.TotalSeconds;
        runtime.SetLoaded(model, scheduler, seconds);
        metrics.ModelLoadSeconds.Set(seconds);
        metrics.ModelInfo.WithLabels(model.Id, model.Backend.Info.Name, model.Backend.Info.Device).Set(1);
        Log.ModelLoaded(logger, model.Id, model.Backend.Info.Name, model.Backend.Info.Device, seconds, scheduler.SlotCount, scheduler.ContextLength);
        runtime.SetReady();
        Status($"serving {model.Id} ({model.Backend.Info.Name}, {scheduler.SlotCount} slots)");
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
        Status($"draining: {inFlight} generations in flight");
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
                Status("stopping (serving loop stuck in the engine)");
                return;
            }
        }

        Log.Drained(logger);
        Status("stopping");
    }

    /// <summary>One short generation through the whole path (JIT, caches, thread pool) before READY=1.</summary>
    private static async Task WarmUpAsync(LoadedModel model, BatchScheduler scheduler, CancellationToken cancellationToken)
    {
        int[] prompt = model.Tokenizer.Encode("Hello", addBos: true);
        if (prompt.Length == 0)
        {
            prompt = [0];
        }

        var request = new GenerationRequest { PromptTokens = prompt, MaxTokens = 2 };
        if (scheduler.TrySubmit(request, out GenerationStream? generation) == SubmitStatus.Accepted)
        {
            await generation!.WaitForFinishAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Status(string text)
    {
        runtime.LoadingStatus = text;
        notifier.Notify(NotifyMessages.Status(text));
    }
}
