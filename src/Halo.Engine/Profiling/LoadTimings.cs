using System.Diagnostics;

namespace Halo.Engine.Profiling;

/// <summary>
/// Where model load time goes, phase by phase (file open and parse, tokenizer, backend choice, ternary repack,
/// LM-head quantization, ...), so that load-time work starts from evidence (<c>halo bench --breakdown</c>, the
/// daemon's debug log). Phases are recorded in the order they finish; a phase seen twice adds up.
/// Not thread-safe: load runs its phases one after another.
/// </summary>
public sealed class LoadTimings
{
    private readonly List<string> _names = [];
    private readonly List<double> _milliseconds = [];

    /// <summary>The phases in the order they were first recorded, with their milliseconds.</summary>
    public IReadOnlyList<(string Phase, double Milliseconds)> Phases
    {
        get
        {
            var phases = new (string, double)[_names.Count];
            for (int i = 0; i < phases.Length; i++)
            {
                phases[i] = (_names[i], _milliseconds[i]);
            }

            return phases;
        }
    }

    public void Add(string phase, double milliseconds)
    {
        int i = _names.IndexOf(phase);
        if (i < 0)
        {
            _names.Add(phase);
            _milliseconds.Add(milliseconds);
        }
        else
        {
            _milliseconds[i] += milliseconds;
        }
    }

    /// <summary>Records the time since <paramref name="startTimestamp"/> (a <see cref="Stopwatch"/> timestamp)
    /// as <paramref name="phase"/> and returns the current timestamp, so consecutive phases chain.</summary>
    public long Lap(string phase, long startTimestamp)
    {
        long now = Stopwatch.GetTimestamp();
        Add(phase, (now - startTimestamp) * 1000.0 / Stopwatch.Frequency);
        return now;
    }

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
