using CliWrap;
using CliWrap.Buffered;

namespace Halo.Installer.Doctor.Checks;

/// <summary>`service.active`: systemd runs halo-server (or holds its socket for activation). A live probe through systemctl.</summary>
public sealed class ServiceActiveCheck : DoctorCheck
{
    public override string Id => "service.active";

    public override string Title => "halo-server running";

    public override async Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken)
    {
        if (!context.LiveProbes)
        {
            return Skip("not run under --root (asks the live systemd)");
        }

        string? systemctl = context.Root.Which("systemctl", ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]);
        if (systemctl is null || !context.Root.DirectoryExists("/run/systemd/system"))
        {
            return Skip("systemd is not running here (no systemctl or /run/systemd/system)");
        }

        string service = await IsActiveAsync(systemctl, "halo-server.service", context.ProbeTimeout, cancellationToken);
        if (service == "active")
        {
            return Ok("halo-server.service is active");
        }

        string socket = await IsActiveAsync(systemctl, "halo-server.socket", context.ProbeTimeout, cancellationToken);
        if (socket == "active" && service is "inactive")
        {
            return Ok("halo-server.socket is listening; the service starts on the first connection");
        }

        const string hint = "sudo systemctl enable --now halo-server.socket halo-server.service; journalctl -u halo-server -e shows why it stopped";
        return service == "activating"
            ? Warn("halo-server.service is still starting (loading the model?)", "wait, or follow journalctl -u halo-server -f")
            : Fail($"halo-server.service is {service}", hint);
    }

    private static async Task<string> IsActiveAsync(string systemctl, string unit, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            BufferedCommandResult result = await CliWrap.Cli.Wrap(systemctl)
                .WithArguments(["is-active", unit])
                .WithValidation(CommandResultValidation.None)
                .ExecuteBufferedAsync(cts.Token);
            string state = result.StandardOutput.Trim();
            return state.Length > 0 ? state : "unknown";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return "unknown (systemctl timed out)";
        }
    }
}
