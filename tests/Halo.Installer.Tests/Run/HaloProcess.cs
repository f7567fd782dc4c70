using System.Diagnostics;
using Halo.Core.Formats;
using Halo.Core.Models;

namespace Halo.Installer.Tests.Run;

/// <summary>Runs the built `halo` CLI (halo.dll beside the tests) as a real process.</summary>
internal static class HaloProcess
{
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "halo.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        using Process p = Process.Start(start)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"halo {string.Join(' ', args)} did not finish");
        }

        return (p.ExitCode, stdout, stderr.Result);
    }

    /// <summary>Writes the tiny synthetic model (TQ2_0, byte vocabulary) into <paramref name="dir"/>.</summary>
    public static string TinyModel(Halo.Testing.TempDir dir, GgmlType type = GgmlType.TQ2_0)
    {
        string path = dir.File($"tiny-{type}.gguf");
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", type, seed: 1), path);
        return path;
    }
}
