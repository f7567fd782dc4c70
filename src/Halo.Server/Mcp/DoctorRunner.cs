using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Halo.Server.Mcp;

/// <summary>How the daemon runs <c>halo doctor --json</c>: the doctor lives in the CLI, which the daemon does not
/// link, so the daemon runs it as a child process.</summary>
public sealed record DoctorCommandLine(string FileName, IReadOnlyList<string> Arguments)
{
    /// <summary><c>halo</c> beside the daemon (the installed layout, and <c>halo serve</c>), else <c>halo</c> on PATH.</summary>
    public static DoctorCommandLine Default()
    {
        string beside = Path.Combine(AppContext.BaseDirectory, "halo");
        return new DoctorCommandLine(File.Exists(beside) ? beside : "halo", ["doctor", "--json"]);
    }
}

/// <summary>Runs the doctor and returns its JSON report. Exit codes 0, 1 and 2 are all reports (ok, warnings,
/// failures); anything else, or output that is not the report, is an error naming what happened.</summary>
internal sealed class DoctorRunner(DoctorCommandLine command)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(2);

    public async Task<JsonObject> RunAsync(CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(command.FileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string argument in command.Arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = StartOrExplain(start);
        process.StandardInput.Close();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(Limit);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(limit.Token);
        Task<string> stderr = process.StandardError.ReadToEndAsync(limit.Token);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            await Task.WhenAll(stdout, stderr).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            cancellationToken.ThrowIfCancellationRequested();
            throw new ApplianceException($"halo doctor did not finish within {Limit.TotalSeconds:0} s");
        }

        if (process.ExitCode is < 0 or > 2)
        {
            throw new ApplianceException($"halo doctor failed (exit {process.ExitCode}): {Tail(stderr.Result)}");
        }

        try
        {
            return JsonNode.Parse(stdout.Result) as JsonObject
                ?? throw new ApplianceException("halo doctor --json printed no JSON object");
        }
        catch (JsonException e)
        {
            throw new ApplianceException($"halo doctor --json printed something that is not JSON ({e.Message}): {Tail(stderr.Result)}");
        }
    }

    private Process StartOrExplain(ProcessStartInfo start)
    {
        try
        {
            return Process.Start(start) ?? throw new ApplianceException($"cannot start {command.FileName}");
        }
        catch (Win32Exception e)
        {
            throw new ApplianceException($"cannot run '{command.FileName}' ({e.Message}); install the halo CLI beside the daemon or on PATH");
        }
    }

    private static string Tail(string text)
    {
        text = text.Trim();
        return text.Length <= 500 ? text : "..." + text[^500..];
    }
}
