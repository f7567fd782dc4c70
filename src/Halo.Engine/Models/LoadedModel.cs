using System.Diagnostics;
using Halo.Core.Formats;
using Halo.Core.Tokenization;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Profiling;

namespace Halo.Engine.Models;

/// <summary>
/// A model file opened for inference: the mapped source, a backend over it and the model's own tokenizer.
/// The one way the CLI (and anything else that starts from a path) loads a model.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private LoadedModel(IModelSource source, IBackend backend, BpeTokenizer? tokenizer, TimeSpan loadTime, LoadTimings timings)
    {
        Timings = timings;
        Source = source;
        Backend = backend;
        Tokenizer = tokenizer;
        LoadTime = loadTime;
    }

    public IModelSource Source { get; }

    public IBackend Backend { get; }

    /// <summary>The model's tokenizer, or null when the file carries none (then only token ids can be used).</summary>
    public BpeTokenizer? Tokenizer { get; }

    /// <summary>From opening the file to a backend ready for its first forward step.</summary>
    public TimeSpan LoadTime { get; }

    /// <summary>Where <see cref="LoadTime"/> went, phase by phase.</summary>
    public LoadTimings Timings { get; }

    /// <summary>
    /// Opens <paramref name="path"/> (GGUF, .h1b or safetensors directory) and builds a backend with
    /// <paramref name="createBackend"/> (the CPU backend when null). Any defect of the file is an
    /// <see cref="InvalidModelException"/> naming the file and what is wrong.
    /// </summary>
    public static LoadedModel Load(string path, BackendOptions options, Func<IModelSource, BackendOptions, IBackend>? createBackend = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(options);
        LoadTimings timings = options.LoadTimings ?? new LoadTimings();
        long start = Stopwatch.GetTimestamp();
        IModelSource source = ModelFile.Open(path);
        timings.Lap("open", start);
        Task<(BpeTokenizer?, double)> tokenizing = StartTokenizer(source);
        try
        {
            IBackend backend = (createBackend ?? CpuBackend.Create)(source, options with { LoadTimings = timings });
            long wait = Stopwatch.GetTimestamp();
            (BpeTokenizer? tokenizer, double tokenizerMs) = WaitFor(tokenizing, backend);
            timings.Lap("tokenizer_wait", wait);
            timings.Add("tokenizer_parallel", tokenizerMs, 0);
            return new LoadedModel(source, backend, tokenizer, Stopwatch.GetElapsedTime(start), timings);
        }
        catch
        {
            // the tokenizer reads the mapped file: it must be done before the file is unmapped
            ((IAsyncResult)tokenizing).AsyncWaitHandle.WaitOne();
            source.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds the tokenizer (~70-90 ms of vocabulary and merge tables for LLaMA-3) on its own thread while the
    /// weights load, returning it with the milliseconds it took.
    /// </summary>
    private static Task<(BpeTokenizer?, double)> StartTokenizer(IModelSource source) => Task.Factory.StartNew(() =>
    {
        long start = Stopwatch.GetTimestamp();
        BpeTokenizer? tokenizer = source.Tokenizer is { } t ? new BpeTokenizer(t) : null;
        return (tokenizer, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    // A tokenizer failure (a bad vocabulary) surfaces as itself, not wrapped, after the backend is released.
    private static (BpeTokenizer?, double) WaitFor(Task<(BpeTokenizer?, double)> tokenizing, IBackend backend)
    {
        try
        {
            return tokenizing.GetAwaiter().GetResult();
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Backend.Dispose();
        Source.Dispose();
    }
}
