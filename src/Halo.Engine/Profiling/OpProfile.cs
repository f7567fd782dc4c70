using System.Diagnostics;

namespace Halo.Engine.Profiling;

/// <summary>The ops that <c>halo bench --breakdown</c> times separately.</summary>
public enum Op
{
    Embedding,
    NormQuantize,   // RMS norm and int8 quantization, with the residual add or the GLU that precedes them
    MatMulQkv,
    Rope,
    Attention,
    MatMulOutput,
    MatMulGateUp,
    MatMulDown,
    Residual,
    LmHead,
    Sampling,
    Overhead,
}

/// <summary>
/// Time spent per op, as plain counters added on the hot path (a Stopwatch timestamp per op when profiling is
/// on; nothing when it is off).
/// </summary>
public sealed class OpProfile
{
    public static readonly int OpCount = Enum.GetValues<Op>().Length;

    private readonly long[] _ticks = new long[OpCount];

    public void Add(Op op, long ticks) => _ticks[(int)op] += ticks;

    public double Milliseconds(Op op) => _ticks[(int)op] * 1000.0 / Stopwatch.Frequency;

    public double TotalMilliseconds
    {
        get
        {
            long sum = 0;
            foreach (long t in _ticks)
            {
                sum += t;
            }

            return sum * 1000.0 / Stopwatch.Frequency;
        }
    }

    public void Reset() => Array.Clear(_ticks);
}
