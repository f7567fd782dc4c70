using System.Diagnostics;

namespace Halo.Engine.Profiling;

/// <summary>
/// Where model load time goes, phase by phase (file open and parse, tokenizer, backend choice, ternary repack,
/// LM-head quantization, ...), so that load-time work starts from evidence (<c>halo bench --breakdown</c>, the
/// daemon's debug log). Phases are recorded in the order they finish; a phase seen twice adds up.
/// Each phase also records the CPU time the whole process spent meanwhile (all threads, kernel included), which
/// shows the work a phase does even when a busy machine stretches its wall time.
/// Not thread-safe: load runs its phases one after another.
/// </summary>
public sealed class LoadTimings
{
    private readonly List<string> _names = [];
    private readonly List<double> _milliseconds = [];
    private readonly List<double> _cpuMilliseconds = [];
    private TimeSpan _lastCpu = ProcessCpu();

    /// <summary>The phases in the order they were first recorded, with their wall and process CPU milliseconds.</summary>
    public IReadOnlyList<(string Phase, double Milliseconds, double CpuMilliseconds)> Phases
    {
        get
        {
            var phases = new (string, double, double)[_names.Count];
            for (int i = 0; i < phases.Length; i++)
            {
                phases[i] = (_names[i], _milliseconds[i], _cpuMilliseconds[i]);
            }

            return phases;
        }
    }

    /// <summary>Adds a phase measured elsewhere; one that ran beside others (on another thread) gives 0 CPU, its CPU
    /// time being counted in the phases it overlapped.</summary>
    public void Add(string phase, double milliseconds, double cpuMilliseconds)
    {
        int i = _names.IndexOf(phase);
        if (i < 0)
        {
            _names.Add(phase);
            _milliseconds.Add(milliseconds);
            _cpuMilliseconds.Add(cpuMilliseconds);
        }
        else
        {
            _milliseconds[i] += milliseconds;
            _cpuMilliseconds[i] += cpuMilliseconds;
        }
    }

    /// <summary>Records the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch"/> timestamp)
    /// as <paramref name="phase"/>, with the process CPU time since the previous lap, and returns the current
    /// timestamp, so consecutive phases chain.</summary>
    public long Lap(string phase, long startTimestamp)
    {
        long now = Stopwatch.GetTimestamp();
        TimeSpan cpu = ProcessCpu();
        Add(phase, (now - startTimestamp) * 1000.0 / Stopwatch.Frequency, (cpu - _lastCpu).TotalMilliseconds);
        _lastCpu = cpu;
        return now;
    }

    /// <summary>Starts the CPU clock of the next phase here (when the time before it belongs to no phase).</summary>
    public void Restart() => _lastCpu = ProcessCpu();

    private static TimeSpan ProcessCpu() => Environment.CpuUsage.TotalTime;

    public double Milliseconds(string phase)
    {
        int i = _names.IndexOf(phase);
        return i < 0 ? 0 : _milliseconds[i];
    }

    /// <summary>"open 12.3 ms, tokenizer 45.6 ms, ..." for a log line.</summary>
    public override string ToString()
    {
        var parts = new string[_names.Count];
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{_names[i]} {_milliseconds[i]:F1} ms");
        }

        return string.Join(", ", parts);
    }
}
