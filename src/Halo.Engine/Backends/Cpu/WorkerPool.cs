using System.Diagnostics;

namespace Halo.Engine.Backends.Cpu;

/// <summary>One unit of parallel work: worker w of n does its share.</summary>
public interface IParallelWork
{
    void Execute(int worker, int workers);
}

/// <summary>
/// Persistent worker threads for the forward pass. A dispatch costs a fraction of a microsecond (workers spin
/// briefly on a generation counter) instead of the ~10 us of Parallel.For, which matters over ~200 matmuls per
/// token. Idle workers fall asleep after a short spin so that an idle engine does not burn cores. The calling
/// thread is worker 0. Not thread-safe: one dispatch at a time.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 us

    private readonly Thread[] _threads;
    private readonly ManualResetEventSlim[] _wake;
    private readonly int[] _sleeping;
    private IParallelWork? _work;
    private int _generation;
    private int _pending;
    private volatile bool _stopping;
    private Exception? _failure;

    public WorkerPool(int threads)
    {
        Threads = Math.Max(1, threads);
        _threads = new Thread[Threads - 1];
        _wake = new ManualResetEventSlim[Threads - 1];
        _sleeping = new int[Threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            int worker = i + 1;
            _wake[i] = new ManualResetEventSlim(false);
            _threads[i] = new Thread(() => Loop(worker)) { IsBackground = true, Name = $"halo-cpu-{worker}" };
            _threads[i].Start();
        }
    }

    public int Threads { get; }

    /// <summary>Runs work on every worker and returns when all are done.</summary>
    public void Run(IParallelWork work)
    {
        if (Threads == 1)
        {
            work.Execute(0, 1);
            return;
        }

        _work = work;
        Volatile.Write(ref _pending, Threads - 1);
        Interlocked.Increment(ref _generation);
        for (int i = 0; i < _threads.Length; i++)
        {
            if (Volatile.Read(ref _sleeping[i]) != 0)
            {
                _wake[i].Set();
            }
        }

        work.Execute(0, Threads);
        var spin = default(SpinWait);
        while (Volatile.Read(ref _pending) != 0)
        {
            spin.SpinOnce(-1);
        }

        _work = null;
        if (_failure is { } failure)
        {
            _failure = null;
            throw new InvalidOperationException("a worker thread failed", failure);
        }
    }

    private void Loop(int worker)
    {
        int seen = 0;
        int index = worker - 1;
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref _generation) == seen && !_stopping)
            {
                if (Stopwatch.GetTimestamp() - start > SpinTicks)
                {
                    Interlocked.Exchange(ref _sleeping[index], 1);
                    if (Volatile.Read(ref _generation) == seen && !_stopping)
                    {
                        _wake[index].Wait();
                    }

                    _wake[index].Reset();
                    Interlocked.Exchange(ref _sleeping[index], 0);
                    start = Stopwatch.GetTimestamp();
                }
                else
                {
                    Thread.SpinWait(16);
                }
            }

            if (_stopping)
            {
                return;
            }

            seen = Volatile.Read(ref _generation);
            try
            {
                _work!.Execute(worker, Threads);
            }
            catch (Exception e)
            {
                _failure = e;
            }

            Interlocked.Decrement(ref _pending);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        foreach (ManualResetEventSlim w in _wake)
        {
            w.Set();
        }

        foreach (Thread t in _threads)
        {
            t.Join();
        }

        foreach (ManualResetEventSlim w in _wake)
        {
            w.Dispose();
        }
    }
}
