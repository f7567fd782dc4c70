using Halo.Engine.Scheduling;
using Halo.Server.Inference;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace Halo.Server.Hosting;

/// <summary>While serving, refreshes systemd's STATUS= line (what <c>systemctl status halo-server</c> shows)
/// every half minute with the load: running and waiting generations, tokens generated so far. Rarely: every
/// message also wakes the service manager, and a notify socket's queue is short.</summary>
internal sealed class StatusService(ISystemdNotifier notifier, ModelRuntime runtime) : BackgroundService
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!notifier.IsEnabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(Every);
        string last = "";
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                if (runtime.State != ServingState.Ready || runtime.Scheduler is not { } scheduler)
                {
                    continue;
                }

                SchedulerStats stats = scheduler.Stats;
                string status = $"serving {runtime.Model!.Id}: {stats.Running} running, {stats.Waiting} waiting, {stats.GenerationTokensTotal} tokens generated";
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
