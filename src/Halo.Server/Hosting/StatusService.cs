using System.Diagnostics;
using System.Globalization;
using Halo.Engine.Scheduling;
using Halo.Server.Inference;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace Halo.Server.Hosting;

/// <summary>While serving, refreshes systemd's STATUS= line (what <c>systemctl status halo-server</c> shows)
/// every half minute with the load: busy slots, waiting generations, decode throughput over the last period and
/// tokens generated so far. Rarely: every message also wakes the service manager, and a notify socket's queue is
/// short.</summary>
internal sealed class StatusService(ISystemdNotifier notifier, ModelRuntime runtime, TimeSpan period) : BackgroundService
{
    public static readonly TimeSpan DefaultPeriod = TimeSpan.FromSeconds(30);

    public StatusService(ISystemdNotifier notifier, ModelRuntime runtime)
        : this(notifier, runtime, DefaultPeriod)
    {
    }

    /// <summary>The serving STATUS= text, e.g. <c>serving 2b on cpu: 3/8 slots busy, 0 waiting, 41.5 tok/s over
    /// the last 30 s, 12345 tokens generated</c>.</summary>
    public static string Serving(string model, string backend, int slots, SchedulerStats stats, double tokensPerSecond, TimeSpan period) =>
        string.Create(CultureInfo.InvariantCulture,
            $"serving {model} on {backend}: {stats.Running}/{slots} slots busy, {stats.Waiting} waiting, {tokensPerSecond:F1} tok/s over the last {period.TotalSeconds:0.#} s, {stats.GenerationTokensTotal} tokens generated");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!notifier.IsEnabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(period);
        string last = "";
        // Started after the model service, so the count so far is the warm-up's.
        long lastTokens = runtime.Scheduler?.Stats.GenerationTokensTotal ?? 0;
        long lastTime = Stopwatch.GetTimestamp();
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                if (runtime.State != ServingState.Ready || runtime.Scheduler is not { } scheduler || runtime.Model is not { } model)
                {
                    continue;
                }

                SchedulerStats stats = scheduler.Stats;
                long now = Stopwatch.GetTimestamp();
                double seconds = Stopwatch.GetElapsedTime(lastTime, now).TotalSeconds;
                double rate = seconds > 0 ? (stats.GenerationTokensTotal - lastTokens) / seconds : 0;
                (lastTokens, lastTime) = (stats.GenerationTokensTotal, now);
                string status = Serving(model.Id, model.Backend.Info.Name, scheduler.SlotCount, stats, rate, period);
                if (status != last)
                {
                    notifier.Notify(NotifyMessages.Status(status));
                    last = status;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
