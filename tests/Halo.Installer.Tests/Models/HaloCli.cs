using System.Diagnostics;

namespace Halo.Installer.Tests.Models;

/// <summary>The real <c>halo</c> CLI as a child process (<c>dotnet halo.dll</c>, built beside the tests from
/// installer/Halo.Installer), with its own environment and a hard timeout.</summary>
internal static class HaloCli
{
    public static string Dll { get; } = Path.Combine(AppContext.BaseDirectory, "halo.dll");

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    public static Process Start(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Dll);
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        // Never let the developer's own settings leak into a test.
        foreach (string variable in new[] { "HALO_MODELS_DIR", "HALO_MODELS_ENDPOINT", "HALO_MODELS_CATALOG" })
        {
            info.Environment.Remove(variable);
        }

        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        return Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
    }

    public static async Task<Result> RunAsync(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        using Process process = Start(environment, args);
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"halo {string.Join(' ', args)} did not finish in 90 s");
        }

        return new Result(process.ExitCode, await stdout, await stderr);
    }
}
