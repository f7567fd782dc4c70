using System.Diagnostics;
using System.Runtime;
using Halo.Core.Configuration;
using Halo.Engine.Scheduling;
using Halo.Server.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Inference;

/// <summary>
/// Everything the model needs before it may serve, done once on a thread of its own: load it, start its serving
/// loop, warm it up. The daemon starts this first thing, before the web host is built, so loading overlaps building
/// the host and binding its sockets (on a warm page cache the two take about as long as each other);
/// <see cref="ModelService"/> waits for it, so the host's start, and with it systemd's READY=1, still comes only
/// after the model is loaded and warm. Tells systemd what it is doing (STATUS=) and asks for more start time
/// (EXTEND_TIMEOUT_USEC) while it works.
/// </summary>
internal sealed class ModelPreparation(HaloOptions options, IModelLoader loader, ModelRuntime runtime, ISystemdNotifier notifier, ILogger logger)
{
    private static readonly TimeSpan ExtendEvery = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ExtendBy = TimeSpan.FromSeconds(20);

    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _cancel = new();
    private readonly long _startedAt = Stopwatch.GetTimestamp();
    private Task? _work;

    public ModelRuntime Runtime => runtime;

    public ISystemdNotifier Notifier => notifier;

    /// <summary>Starts the preparation (only the first call does anything); the task completes when the model is
    /// loaded and warm, and faults with the reason when it cannot be loaded.</summary>
    public Task Start()
    {
        lock (_lock)
        {
            // Not a thread-pool thread: the pool is small at start, and the host's start needs it meanwhile.
            return _work ??= Task.Factory.StartNew(Prepare, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
    }

    /// <summary>Stops a preparation still under way at its next step (SIGTERM while loading).</summary>
    public void Cancel() => _cancel.Cancel();

    /// <summary>Seconds from this object's creation (the daemon's start) to now.</summary>
    public double ElapsedSeconds => Stopwatch.GetElapsedTime(_startedAt).TotalSeconds;

    private void Prepare()
    {
        CancellationToken cancellationToken = _cancel.Token;
        using var extender = new Timer(_ => notifier.Notify(NotifyMessages.ExtendTimeout(ExtendBy)), null, TimeSpan.Zero, ExtendEvery);
        string what = options.Model.Path.Length > 0 ? options.Model.Path : options.Model.ModelsDir;
        Status("loading model " + what);
        Log.LoadingModel(logger, what);
        LoadedModel model = loader.Load(options, Status, logger, cancellationToken);
        if (model.RandomWeights)
        {
            Log.RandomWeights(logger, model.Id);
        }

        BatchScheduler scheduler;
        try
        {
            scheduler = new BatchScheduler(model.Backend, options.Scheduler, model.Samplers);
        }
        catch
        {
            model.Dispose();
            throw;
        }

        runtime.SetLoaded(model, scheduler, 0);
        cancellationToken.ThrowIfCancellationRequested();
        Status("warming up " + model.Id);
        long warmUp = Stopwatch.GetTimestamp();
        TimeSpan jitBefore = JitInfo.GetCompilationTime(currentThread: false);
        long methodsBefore = JitInfo.GetCompiledMethodCount(currentThread: false);
        WarmUp(model, scheduler, cancellationToken);
        Log.WarmedUp(logger, Stopwatch.GetElapsedTime(warmUp).TotalMilliseconds,
            JitInfo.GetCompiledMethodCount(currentThread: false) - methodsBefore, (JitInfo.GetCompilationTime(currentThread: false) - jitBefore).TotalMilliseconds);
    }

    /// <summary>
    /// One short generation through the serving path before READY=1: one token from a prompt of two, so it compiles the
    /// prefill kernels, the LM head, the sampler and the serving loop and touches the buffers, and the first request
    /// does not pay for that. It runs the first layer only (<see cref="IBackend.WarmingUp"/>): the other layers run the
    /// same kernels, and reading all their weights cost every start 25-30 ms on 2 cores (READY=1 on the 2B shapes with
    /// the LLaMA-3 tokenizer 260-296 against 285-326 ms) and bought the first request nothing (an 8-token completion
    /// right after READY=1 took 140-150 against 151-221 ms). The next sequence in its slot writes its positions anew.
    /// The decode kernels compile at the first request's first decode step instead: a decode
    /// step in the warm-up cost every start about 50 ms on 2 cores (READY=1 on the 2B shapes 259-280 against 312-333
    /// ms), while an 8-token request sent right after READY=1 took as long either way (219-222 against 222-227 ms,
    /// steady state 175-185).
    /// </summary>
    private static void WarmUp(LoadedModel model, BatchScheduler scheduler, CancellationToken cancellationToken)
    {
        int[] prompt = model.Tokenizer.Encode("Hello", addBos: true);
        if (prompt.Length < 2)
        {
            prompt = [0, 0];
        }

        var request = new GenerationRequest { PromptTokens = prompt, MaxTokens = 1 };
        model.Backend.WarmingUp = true;
        try
        {
            if (scheduler.TrySubmit(request, out GenerationStream? generation) == SubmitStatus.Accepted)
            {
                generation!.WaitForFinishAsync(cancellationToken).GetAwaiter().GetResult();
            }
        }
        finally
        {
            model.Backend.WarmingUp = false;
        }
    }

    /// <summary>What the daemon is doing, for systemd (STATUS=) and <c>/health</c>: loading and warming up here, then
    /// serving and draining (<see cref="ModelService"/>).</summary>
    public void Status(string text)
    {
        runtime.LoadingStatus = text;
        notifier.Notify(NotifyMessages.Status(text));
    }
}
