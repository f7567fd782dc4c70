using System.Diagnostics;
using System.Text;

namespace Halo.Installer.Tests.Packaging;

/// <summary>What a finished child process left behind.</summary>
internal sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    public string Output => StdOut + StdErr;
}

/// <summary>
/// Runs the real system tools the packaging is checked with (systemd-analyze, promtool, shellcheck, haproxy,
/// prometheus, npm, the installer script) and finds them on PATH with one clear message when absent.
/// </summary>
internal static class ProcessRunner
{
    /// <summary>The full path of <paramref name="tool"/> on PATH (also the sbin dirs), or null.</summary>
    public static string? Find(string tool)
    {
        string path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (string dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin"]))
        {
            string candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The tool's path; fails the test naming the Debian package when it is missing.</summary>
    public static string Require(string tool, string debianPackage) =>
        Find(tool) ?? throw new InvalidOperationException(
            $"'{tool}' is not installed: apt-get install {debianPackage} (.ci/run installs it on CI machines)");

    public static ProcessResult Run(
        string fileName,
        IEnumerable<string> arguments,
        TimeSpan? timeout = null,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        using Process process = Start(fileName, arguments, workingDirectory, environment, redirect: true);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish in {timeout}");
        }

        process.WaitForExit();
        return new ProcessResult(process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Starts a long-running child (a daemon, Prometheus, HAProxy) with its output sent to a log file.</summary>
    public static Process StartLogged(
        string fileName,
        IEnumerable<string> arguments,
        string logFile,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        Process process = Start(fileName, arguments, workingDirectory, environment, redirect: true);
        var log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        object gate = new();
        void Write(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (gate)
            {
                log.WriteLine(line);
            }
        }

        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.Exited += (_, _) => { lock (gate) { log.Flush(); } };
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Stops a child started here: SIGTERM first (so daemons drain), SIGKILL after the grace period.</summary>
    public static void Stop(Process process, TimeSpan grace)
    {
        if (process.HasExited)
        {
            return;
        }

        Terminate(process.Id);
        if (!process.WaitForExit(grace))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }

    private static void Terminate(int pid)
    {
        using Process kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            UseShellExecute = false,
        })!;
        kill.WaitForExit();
    }

    private static Process Start(
        string fileName,
        IEnumerable<string> arguments,
        string? workingDirectory,
        IReadOnlyDictionary<string, string>? environment,
        bool redirect)
    {
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = redirect,
            RedirectStandardError = redirect,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (environment is not null)
        {
            foreach ((string key, string value) in environment)
            {
                info.Environment[key] = value;
            }
        }

        Process process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName}");
        process.StandardInput.Close();
        return process;
    }
}
