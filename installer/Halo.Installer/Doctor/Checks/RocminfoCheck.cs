using CliWrap;
using CliWrap.Buffered;

namespace Halo.Installer.Doctor.Checks;

/// <summary>`rocm.rocminfo`: the ROCm runtime itself sees a gfx1151 agent (a live probe, with a timeout).</summary>
public sealed class RocminfoCheck : DoctorCheck
{
    public override string Id => "rocm.rocminfo";

    public override string Title => "rocminfo";

    public override async Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken)
    {
        if (!context.LiveProbes)
        {
            return Skip("not run under --root (rocminfo probes the live GPU)");
        }

        string? rocminfo = context.Root.Which("rocminfo", [.. (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'), "/opt/rocm/bin"]);
        if (rocminfo is null)
        {
            return Skip("rocminfo not installed" + (context.Machine.HasStrixHalo ? " (install rocminfo to confirm the runtime sees the GPU)" : ""));
        }

        BufferedCommandResult result;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(context.ProbeTimeout);
            result = await CliWrap.Cli.Wrap(context.Root.Host(rocminfo)).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Fail($"rocminfo did not finish within {context.ProbeTimeout.TotalSeconds:0} s", "the GPU driver may be wedged: check dmesg | grep -i amdgpu, reboot");
        }

        bool expectGpu = context.Machine.HasStrixHalo;
        if (result.StandardOutput.Contains("gfx1151", StringComparison.Ordinal))
        {
            return Ok("rocminfo lists a gfx1151 agent");
        }

        string why = result.ExitCode != 0
            ? $"rocminfo exited {result.ExitCode}: {FirstLine(result.StandardError + result.StandardOutput)}"
            : "rocminfo lists no gfx1151 agent";
        const string hint = "add the halo user (and yourself) to render and video, check /dev/kfd permissions, and that ROCm >= 7.2 is installed";
        return expectGpu ? Fail(why, hint) : Warn(why, hint);
    }

    private static string FirstLine(string text)
    {
        string trimmed = text.Trim();
        int newline = trimmed.IndexOf('\n');
        return newline < 0 ? trimmed : trimmed[..newline];
    }
}
