using System.Diagnostics;
using Halo.Server.Inference;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace Halo.Server.Hosting;

/// <summary>
/// Sends WATCHDOG=1 at half the period systemd asked for, but only while the serving loop makes progress: the
/// scheduler stamps a heartbeat on every turn (idle turns too), and a loop stuck inside the engine stops stamping,
/// so the pings stop and systemd restarts the wedged daemon. A timer that pinged regardless would hide it.
/// </summary>
internal sealed class WatchdogService(ISystemdNotifier notifier, ModelRuntime runtime, TimeSpan period) : BackgroundService
{
    public TimeSpan Period { get; } = period;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        TimeSpan interval = Period / 2;
        using var timer = new PeriodicTimer(interval);
        do
        {
            if (runtime.Scheduler is { } scheduler
                && Stopwatch.GetElapsedTime(scheduler.LastProgressTimestamp) < interval)
            {
                notifier.Notify(NotifyMessages.Watchdog);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await base.StopAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopping is what was asked.
        }
    }
}
