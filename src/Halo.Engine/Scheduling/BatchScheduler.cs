using System.Diagnostics;
using Halo.Core.Configuration;
using Halo.Engine.Backends;
using Halo.Engine.Sampling;

namespace Halo.Engine.Scheduling;

/// <summary>
/// Continuous batching over one <see cref="IBackend"/> (DESIGN.md section 5, Scheduling): a bounded queue of
/// requests feeds N slots; each step of the serving loop runs one batched forward pass holding one token of every
/// decoding slot plus a budget of prompt chunks of prefilling slots, then samples a token for every slot whose
/// prompt is done. A cancelled generation leaves its slot at the next step. The loop runs on its own thread; after
/// warm-up a decode step allocates nothing (<see cref="SchedulerStats.DecodeStepAllocatedBytes"/> proves it).
/// </summary>
public sealed class BatchScheduler : IDisposable
{
    private readonly IBackend _backend;
    private readonly Func<SamplingParams, ITokenSampler> _samplerFactory;
    private readonly int _queueCapacity;
    // While any stream decodes, a step carries at most this many prompt tokens: a long prompt then delays each
    // running stream's next token by a short forward pass (~0.4 s for 64 tokens of the 2B shapes on 2 cores)
    // rather than a whole chunk (~1.2 s for 256).
    private const int PrefillTokensWhileDecoding = 64;

    private readonly int _prefillBudget;         // prompt tokens per step, over all prefilling slots
    private readonly int _defaultMaxTokens;
    private readonly int _vocab;
    private readonly Slot[] _slots;               // [slots]
    private readonly SequenceChunk[] _chunks;     // [slots] this step's batch
    private readonly int[] _chunkSlot;            // [slots] chunk i belongs to slot _chunkSlot[i]
    private readonly float[] _logits;             // [slots, vocab]
    private readonly float[] _rawLogits;          // [vocab] a row kept before sampling changes it (logprobs)
    private readonly Queue<GenerationStream> _waiting = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _draining;
    private volatile bool _stopping;
    private int _running;                          // slots holding a generation
    private long _lastProgress;                    // Stopwatch timestamp of the loop's last turn
    private long _promptTokensTotal;
    private long _generationTokensTotal;
    private long _steps;
    private long _decodeSteps;
    private long _decodeStepAllocatedBytes;
    private long _busyTicks;                       // Stopwatch ticks inside steps
    private long _forwardTicks;                    // of which inside the backend's forward pass
    private long _cachedPositions;

    public BatchScheduler(IBackend backend, SchedulerOptions options, Func<SamplingParams, ITokenSampler> samplerFactory)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (options.Slots > backend.MaxSlots)
        {
            throw new ArgumentException($"scheduler.slots {options.Slots} exceeds the backend's {backend.MaxSlots} KV cache slots", nameof(options));
        }

        _backend = backend;
        _samplerFactory = samplerFactory;
        _queueCapacity = options.QueueSize;
        _prefillBudget = options.PrefillChunkTokens;
        _defaultMaxTokens = options.DefaultMaxTokens;
        _vocab = backend.Config.VocabSize;
        ContextLength = backend.ContextLength;
        _slots = new Slot[options.Slots];
        for (int i = 0; i < _slots.Length; i++)
        {
            _slots[i] = new Slot(i, ContextLength);
        }

        _chunks = new SequenceChunk[_slots.Length];
        _chunkSlot = new int[_slots.Length];
        _logits = new float[_slots.Length * _vocab];
        _rawLogits = new float[_vocab];
        _lastProgress = Stopwatch.GetTimestamp();
        _thread = new Thread(Run) { IsBackground = true, Name = "halo-scheduler" };
        _thread.Start();
    }

    public int SlotCount => _slots.Length;

    public int ContextLength { get; }

    /// <summary>Stopwatch timestamp of the serving loop's last turn (idle turns included). A loop stuck in the
    /// engine stops advancing it; the systemd watchdog keys off this.</summary>
    public long LastProgressTimestamp => Volatile.Read(ref _lastProgress);

    public bool IsDraining => _draining;

    /// <summary>Failure of the last forward pass, if one threw (the generations of that step end cancelled).</summary>
    public string? LastError { get; private set; }

    public SchedulerStats Stats
    {
        get
        {
            int waiting;
            lock (_waiting)
            {
                waiting = _waiting.Count;
            }

            return new SchedulerStats(
                Running: Volatile.Read(ref _running),
                Waiting: waiting,
                PromptTokensTotal: Interlocked.Read(ref _promptTokensTotal),
                GenerationTokensTotal: Interlocked.Read(ref _generationTokensTotal),
                Steps: Interlocked.Read(ref _steps),
                DecodeSteps: Interlocked.Read(ref _decodeSteps),
                DecodeStepAllocatedBytes: Interlocked.Read(ref _decodeStepAllocatedBytes),
                BusyTicks: Interlocked.Read(ref _busyTicks),
                ForwardTicks: Interlocked.Read(ref _forwardTicks),
                KvCacheUsage: (double)Interlocked.Read(ref _cachedPositions) / ((long)_slots.Length * ContextLength));
        }
    }

    /// <summary>Queues a request. Never blocks; the status says why it was refused.</summary>
    public SubmitStatus TrySubmit(GenerationRequest request, out GenerationStream? generation)
    {
        generation = null;
        int prompt = request.PromptTokens.Length;
        if (prompt == 0)
        {
            throw new ArgumentException("the prompt must hold at least one token (BOS)", nameof(request));
        }

        if (prompt >= ContextLength)
        {
            return SubmitStatus.ContextOverflow;
        }

        int room = ContextLength - prompt;
        int wanted = request.MaxTokens > 0 ? request.MaxTokens : _defaultMaxTokens > 0 ? _defaultMaxTokens : room;

        // Made here, on the caller's thread: a sampler that rejects its parameters fails this call, not the loop.
        ITokenSampler sampler = _samplerFactory(request.Sampling);
        lock (_waiting)
        {
            if (_draining)
            {
                return SubmitStatus.ShuttingDown;
            }

            if (_waiting.Count + Volatile.Read(ref _running) >= _slots.Length + _queueCapacity)
            {
                return SubmitStatus.QueueFull;
            }

            generation = new GenerationStream(request, Math.Min(wanted, room), sampler);
            _waiting.Enqueue(generation);
        }

        _wake.Release();
        return SubmitStatus.Accepted;
    }

    /// <summary>Refuses new requests from now on (drain on SIGTERM); running and queued ones go on.</summary>
    public void BeginDrain()
    {
        lock (_waiting)
        {
            _draining = true;
        }

        _wake.Release();
    }

    /// <summary>Completes once draining and nothing is queued or running.</summary>
    public Task WhenDrained => _idle.Task;

    /// <summary>Cuts every queued and running generation (drain timeout reached).</summary>
    public void CancelAll()
    {
        lock (_waiting)
        {
            foreach (GenerationStream queued in _waiting)
            {
                queued.Cancel();
            }
        }

        foreach (Slot slot in _slots)
        {
            slot.Generation?.Cancel();
        }

        _wake.Release();
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Release();
        _thread.Join();
        CancelAll();
        lock (_waiting)
        {
            while (_waiting.TryDequeue(out GenerationStream? queued))
            {
                queued.Complete(FinishReason.Cancelled);
            }
        }

        foreach (Slot slot in _slots)
        {
            slot.Generation?.Complete(FinishReason.Cancelled);
        }
    }

    private void Run()
    {
        while (!_stopping)
        {
            Volatile.Write(ref _lastProgress, Stopwatch.GetTimestamp());
            bool changed = ReleaseCancelled() | Admit();
            if (Volatile.Read(ref _running) == 0)
            {
                if (_draining && QueueEmpty())
                {
                    _idle.TrySetResult();
                }

                // Idle: wake on a submit, or every 100 ms to keep the heartbeat fresh (watchdog periods are
                // seconds; a tenth of a second of idle wake-ups costs nothing).
                _wake.Wait(100);
                continue;
            }

            Step(changed);
        }
    }

    private bool AnyDecoding()
    {
        foreach (Slot slot in _slots)
        {
            if (slot.Generation is not null && slot.Fed >= slot.PromptLength)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>One forward pass over every active slot, then one sampled token for each slot whose prompt is in.</summary>
    private void Step(bool admittedOrReleased)
    {
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        long stepStart = Stopwatch.GetTimestamp();
        bool decodeOnly = !admittedOrReleased;

        // 1. Batch: a decoding slot feeds its last sampled token; a prefilling slot a chunk of its prompt.
        int count = 0;
        int budget = AnyDecoding() ? Math.Min(_prefillBudget, PrefillTokensWhileDecoding) : _prefillBudget;
        foreach (Slot slot in _slots)
        {
            if (slot.Generation is null)
            {
                continue;
            }

            int feed;
            if (slot.Fed < slot.PromptLength)
            {
                if (budget == 0)
                {
                    continue;
                }

                feed = Math.Min(budget, slot.PromptLength - slot.Fed);
                budget -= feed;
                decodeOnly = false;
            }
            else
            {
                feed = 1;   // the token sampled last step, not yet in the KV cache
            }

            _chunks[count] = new SequenceChunk(slot.Index, slot.Fed, slot.Tokens.AsMemory(slot.Fed, feed));
            _chunkSlot[count] = slot.Index;
            count++;
        }

        try
        {
            // 2. Forward: one call for the whole batch; logits row i belongs to chunk i.
            long forwardStart = Stopwatch.GetTimestamp();
            _backend.Forward(_chunks.AsSpan(0, count), _logits.AsSpan(0, count * _vocab));
            Interlocked.Add(ref _forwardTicks, Stopwatch.GetTimestamp() - forwardStart);

            // 3. Sample and deliver.
            decodeOnly &= SampleAll(count);
        }
        catch (Exception e)
        {
            // An engine fault ends this step's generations; the loop, and every later request, goes on.
            LastError = e.Message;
            for (int i = 0; i < count; i++)
            {
                Finish(_slots[_chunkSlot[i]], FinishReason.Cancelled);
            }

            return;
        }

        long cached = 0;
        foreach (Slot slot in _slots)
        {
            cached += slot.Generation is null ? 0 : slot.Fed;
        }

        Interlocked.Exchange(ref _cachedPositions, cached);
        Interlocked.Increment(ref _steps);
        Interlocked.Add(ref _busyTicks, Stopwatch.GetTimestamp() - stepStart);
        if (decodeOnly)
        {
            Interlocked.Increment(ref _decodeSteps);
            Interlocked.Add(ref _decodeStepAllocatedBytes, GC.GetAllocatedBytesForCurrentThread() - allocatedBefore);
        }
    }

    /// <summary>Advances every chunk's slot and samples where the prompt is in; false when a generation ended.</summary>
    private bool SampleAll(int count)
    {
        bool unchanged = true;
        long now = Stopwatch.GetTimestamp();
        for (int i = 0; i < count; i++)
        {
            Slot slot = _slots[_chunkSlot[i]];
            int fed = _chunks[i].Tokens.Length;
            bool wasPrefill = slot.Fed < slot.PromptLength;
            slot.Fed += fed;
            if (wasPrefill)
            {
                Interlocked.Add(ref _promptTokensTotal, fed);
                if (slot.Fed < slot.PromptLength)
                {
                    continue;   // more prompt to feed: these logits are not needed
                }
            }

            if (SampleInto(slot, _logits.AsSpan(i * _vocab, _vocab), now))
            {
                unchanged = false;
            }
        }

        return unchanged;
    }

    /// <summary>Samples the slot's next token and delivers it; returns true when the generation ended.</summary>
    private bool SampleInto(Slot slot, Span<float> logits, long timestamp)
    {
        GenerationStream generation = slot.Generation!;
        int topLogprobs = generation.Request.TopLogprobs;
        if (topLogprobs >= 0)
        {
            logits.CopyTo(_rawLogits);
        }

        int token = slot.Sampler!.Sample(logits, slot.Tokens.AsSpan(0, slot.Fed));
        if (Array.IndexOf(generation.Request.StopTokens, token) >= 0)
        {
            Finish(slot, FinishReason.Stop);
            return true;
        }

        float logprob = 0f;
        TokenLogprob[]? top = null;
        if (topLogprobs >= 0)
        {
            float logSumExp = Logprobs.LogSumExp(_rawLogits);
            logprob = _rawLogits[token] - logSumExp;
            if (topLogprobs > 0)
            {
                top = Logprobs.Top(_rawLogits, topLogprobs, logSumExp);
            }
        }

        slot.Tokens[slot.Fed] = token;
        Interlocked.Increment(ref _generationTokensTotal);
        generation.Write(new GeneratedToken(token, logprob, top, timestamp));
        if (generation.CompletionTokenCount >= generation.MaxTokens || slot.Fed + 1 >= ContextLength)
        {
            Finish(slot, FinishReason.Length);
            return true;
        }

        return false;
    }

    private bool Admit()
    {
        bool admitted = false;
        foreach (Slot slot in _slots)
        {
            if (slot.Generation is not null)
            {
                continue;
            }

            GenerationStream? next = null;
            lock (_waiting)
            {
                while (_waiting.TryDequeue(out GenerationStream? candidate))
                {
                    if (!candidate.IsCancellationRequested)
                    {
                        next = candidate;
                        Interlocked.Increment(ref _running);   // counted before leaving the queue lock: no over-admission
                        break;
                    }

                    candidate.Complete(candidate.CancelReason);
                }
            }

            if (next is null)
            {
                break;
            }

            int[] prompt = next.Request.PromptTokens;
            prompt.CopyTo(slot.Tokens, 0);
            slot.PromptLength = prompt.Length;
            slot.Fed = 0;
            slot.Sampler = next.Sampler;
            slot.Generation = next;
            next.AdmittedTimestamp = Stopwatch.GetTimestamp();
            admitted = true;
        }

        return admitted;
    }

    private bool ReleaseCancelled()
    {
        bool released = false;
        foreach (Slot slot in _slots)
        {
            if (slot.Generation is { IsCancellationRequested: true } generation)
            {
                Finish(slot, generation.CancelReason);
                released = true;
            }
        }

        return released;
    }

    private void Finish(Slot slot, FinishReason reason)
    {
        GenerationStream? generation = slot.Generation;
        if (generation is null)
        {
            return;
        }

        slot.Generation = null;
        slot.Sampler = null;
        Interlocked.Decrement(ref _running);
        generation.Complete(reason);
    }

    private bool QueueEmpty()
    {
        lock (_waiting)
        {
            return _waiting.Count == 0;
        }
    }

    /// <summary>A KV cache slot and the sequence in it.</summary>
    private sealed class Slot(int index, int contextLength)
    {
        public int Index { get; } = index;

        public int[] Tokens { get; } = new int[contextLength];   // [context] prompt, then generated tokens

        public int PromptLength { get; set; }

        public int Fed { get; set; }                              // tokens already in the KV cache

        public GenerationStream? Generation { get; set; }

        public ITokenSampler? Sampler { get; set; }
    }
}

/// <summary>A snapshot of the serving loop's counters (read at scrape time). <see cref="BusyTicks"/> is the
/// <see cref="Stopwatch"/> time spent in steps, <see cref="ForwardTicks"/> the part of it inside the backend's forward
/// pass; the rest is the loop's own overhead (batch assembly, sampling, delivery).</summary>
public readonly record struct SchedulerStats(
    int Running,
    int Waiting,
    long PromptTokensTotal,
    long GenerationTokensTotal,
    long Steps,
    long DecodeSteps,
    long DecodeStepAllocatedBytes,
    long BusyTicks,
    long ForwardTicks,
    double KvCacheUsage);
