using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace Halo.Installer.Models;

/// <summary>
/// Shows download and verify progress: Spectre.Console bars on an interactive terminal, plain lines (at most
/// one per file every 10% or 5 s) when stdout is a pipe, a log file or a journal.
/// </summary>
internal static class ProgressView
{
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs work with a progress sink and a warning logger suited to the console.</summary>
    /// <param name="writing">The verb of <see cref="DownloadPhase.Downloading"/> in plain lines ("writing" for convert).</param>
    public static async Task<T> RunAsync<T>(Func<IProgress<DownloadProgress>, Action<string>, Task<T>> work, string writing = "downloading")
    {
        if (!Interactive)
        {
            return await work(new PlainSink(writing), message => Console.Error.WriteLine($"warning: {message}"));
        }

        return await AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(
                new TaskDescriptionColumn(),
                new ProgressBarColumn(),
                new PercentageColumn(),
                new DownloadedColumn(),
                new TransferSpeedColumn(),
                new RemainingTimeColumn())
            .StartAsync(async context =>
                await work(new SpectreSink(context), message => AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {message}")));
    }

    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0 ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }

    private static string Verb(DownloadPhase phase, string writing) => phase switch
    {
        DownloadPhase.Connecting => "connecting",
        DownloadPhase.Downloading => writing,
        DownloadPhase.Verifying => "verifying",
        _ => "done",
    };

    private sealed class SpectreSink(ProgressContext context) : IProgress<DownloadProgress>
    {
        private readonly Dictionary<string, ProgressTask> _tasks = new(StringComparer.Ordinal);
        private readonly Lock _gate = new();

        public void Report(DownloadProgress value)
        {
            lock (_gate)
            {
                string key = value.Phase == DownloadPhase.Verifying ? "verify " + value.File : value.File;
                if (!_tasks.TryGetValue(key, out ProgressTask? task))
                {
                    task = context.AddTask(Markup.Escape(key), autoStart: true);
                    _tasks[key] = task;
                }

                if (value.Total is { } total and > 0)
                {
                    task.IsIndeterminate = false;
                    task.MaxValue = total;
                }
                else
                {
                    task.IsIndeterminate = value.Phase != DownloadPhase.Done;
                }

                task.Value = value.Bytes;
                if (value.Phase == DownloadPhase.Done)
                {
                    task.Value = task.MaxValue;
                    task.StopTask();
                    if (_tasks.TryGetValue("verify " + value.File, out ProgressTask? verify))
                    {
                        verify.Value = verify.MaxValue;
                        verify.StopTask();
                    }
                }
            }
        }
    }

    private sealed class PlainSink(string writing) : IProgress<DownloadProgress>
    {
        private readonly Lock _gate = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private string _lastKey = "";
        private int _lastDecile = -1;
        private TimeSpan _lastLine;
        private long _phaseStartBytes;
        private TimeSpan _phaseStart;

        public void Report(DownloadProgress value)
        {
            lock (_gate)
            {
                string key = value.File + "/" + value.Phase;
                TimeSpan now = _clock.Elapsed;
                bool newPhase = key != _lastKey;
                if (newPhase)
                {
                    _lastKey = key;
                    _lastDecile = -1;
                    _phaseStart = now;
                    _phaseStartBytes = value.Bytes;
                }

                int decile = value.Total is > 0 ? (int)(value.Bytes * 10 / value.Total.Value) : -1;
                bool due = newPhase || decile > _lastDecile || now - _lastLine >= TimeSpan.FromSeconds(5);
                if (!due || value.Phase == DownloadPhase.Connecting && !newPhase)
                {
                    return;
                }

                _lastDecile = Math.Max(_lastDecile, decile);
                _lastLine = now;
                Console.Out.WriteLine(Line(value, now - _phaseStart, value.Bytes - _phaseStartBytes));
            }
        }

        private string Line(DownloadProgress value, TimeSpan elapsed, long phaseBytes)
        {
            if (value.Phase is DownloadPhase.Connecting)
            {
                return $"{value.File}: connecting";
            }

            if (value.Phase is DownloadPhase.Done)
            {
                return $"{value.File}: done, {Bytes(value.Bytes)}";
            }

            string amount = value.Total is > 0
                ? string.Create(CultureInfo.InvariantCulture, $"{value.Bytes * 100.0 / value.Total.Value,5:0.0}% {Bytes(value.Bytes)} of {Bytes(value.Total.Value)}")
                : Bytes(value.Bytes);
            string speed = elapsed.TotalSeconds >= 0.5 ? $", {Bytes((long)(phaseBytes / elapsed.TotalSeconds))}/s" : "";
            return $"{value.File}: {Verb(value.Phase, writing)} {amount}{speed}";
        }
    }
}
