using CliWrap;
using CliWrap.Buffered;
using Halo.Installer.Doctor.Checks;

namespace Halo.Installer.Provision.Steps;

/// <summary>Starts the socket and the doctor timer, and (re)starts the daemon when a verified model is there to serve.</summary>
public sealed class StartStep : IProvisionStep
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(6);

    public async Task<ProvisionStep> PlanAsync(ProvisionContext context, CancellationToken cancellationToken)
    {
        var step = new ProvisionStep("start", "services started");
        if (!context.Live)
        {
            step.AlreadyDone = "skipped under --root: nothing is started in a fake root";
            return step;
        }

        if (!context.Root.DirectoryExists("/run/systemd/system"))
        {
            step.AlreadyDone = "skipped: systemd is not running (container or chroot); the units start at the next boot";
            return step;
        }

        string[] units = ["halo-server.socket", "halo-doctor.timer", ServiceUnitCheck.ServiceName];
        BufferedCommandResult state = await CliWrap.Cli.Wrap("systemctl").WithArguments(["is-active", .. units])
            .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(cancellationToken);
        if (state.ExitCode == 0)
        {
            step.AlreadyDone = $"{string.Join(", ", units)} active";
            return step;
        }

        string[] start = ["start", "halo-server.socket", "halo-doctor.timer"];
        step.Actions.Add(new ProvisionAction(ActionKind.Run, $"systemctl {string.Join(' ', start)}",
            ct => ProvisionContext.RunAsync("systemctl", start, CommandTimeout, ct), LiveOnly: true));
        string[] restart = ["restart", ServiceUnitCheck.ServiceName];
        step.Actions.Add(new ProvisionAction(ActionKind.Run, $"systemctl {string.Join(' ', restart)} (loads the model; waits for READY=1)",
            ct => ProvisionContext.RunAsync("systemctl", restart, CommandTimeout, ct), LiveOnly: true));
        return step;
    }
}
