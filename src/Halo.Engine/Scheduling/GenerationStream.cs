using System.Diagnostics;
using System.Threading.Tasks.Sources;

namespace Halo.Engine.Scheduling;

/// <summary>
/// One accepted request as its caller sees it: the tokens as they come, the finish reason at the end, and the
/// timestamps the metrics need. The serving loop writes; one reader consumes with <see cref="WaitToReadAsync"/>
/// and <see cref="TryRead"/>. Writing never blocks and, once the buffer has grown to what the reader lags by,
/// never allocates.
/// </summary>
public sealed class GenerationStream : IValueTaskSource<bool>
{
    private readonly object _gate = new();
    private ManualResetValueTaskSourceCore<bool> _wake = new() { RunContinuationsAsynchronously = true };
    private bool _readerWaiting;      // the reader awaits _wake
    private GeneratedToken[] _ring;   // [capacity] tokens not yet read
    private int _head;                // index of the oldest unread token
    private int _count;
    private volatile bool _cancelRequested;
    private FinishReason? _finish;

    internal GenerationStream(GenerationRequest request, int maxTokens, ITokenSampler sampler)
    {
        Request = request;
        Sampler = sampler;
        MaxTokens = maxTokens;
        _ring = new GeneratedToken[Math.Clamp(maxTokens, 4, 1024)];   // a reader may lag a whole request behind
        EnqueuedTimestamp = Stopwatch.GetTimestamp();
    }

    public GenerationRequest Request { get; }

    internal ITokenSampler Sampler { get; }

    /// <summary>The request's max_tokens after clamping to the context.</summary>
    public int MaxTokens { get; }

    public int PromptTokenCount => Request.PromptTokens.Length;

    /// <summary>Tokens generated so far (stop tokens excluded).</summary>
    public int CompletionTokenCount { get; private set; }

    /// <summary>Set once the generation ended and every token before it was written.</summary>
    public FinishReason? FinishReason
    {
        get
        {
            lock (_gate)
            {
                return _finish;
            }
        }
    }

    public bool IsCancellationRequested => _cancelRequested;

    /// <summary><see cref="Stopwatch"/> timestamps: submitted, given a slot, first token written.</summary>
    public long EnqueuedTimestamp { get; }

    public long AdmittedTimestamp { get; internal set; }

    public long FirstTokenTimestamp { get; private set; }

    /// <summary>Ends the generation at the next step and frees its slot (client gone, stop string reached).</summary>
    public void Cancel(FinishReason reason = Scheduling.FinishReason.Cancelled)
    {
        CancelReason = reason;
        _cancelRequested = true;
    }

    internal FinishReason CancelReason { get; private set; } = Scheduling.FinishReason.Cancelled;

    /// <summary>Completes with true when a token is available, false once the generation ended and all was read.</summary>
    public async ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            ValueTask<bool> wake;
            lock (_gate)
            {
                if (_count > 0)
                {
                    return true;
                }

                if (_finish is not null)
                {
                    return false;
                }

                _wake.Reset();
                _readerWaiting = true;
                wake = new ValueTask<bool>(this, _wake.Version);
            }

            using (cancellationToken.UnsafeRegister(static state => ((GenerationStream)state!).WakeReader(cancelled: true), this))
            {
                if (!await wake.ConfigureAwait(false))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }

            // A wake can be stale: a writer that released its lock before waking may have been overtaken by this
            // reader, which already took that token and began a new wait. Look again instead of reporting the end
            // of a generation that is still running (that was a rare 500 under 64-client load).
        }
    }

    public bool TryRead(out GeneratedToken token)
    {
        lock (_gate)
        {
            if (_count == 0)
            {
                token = default;
                return false;
            }

            token = _ring[_head];
            _head = (_head + 1) % _ring.Length;
            _count--;
            return true;
        }
    }

    /// <summary>Waits for the end, discarding tokens; for callers that only need the count (warm-up).</summary>
    public async Task<FinishReason> WaitForFinishAsync(CancellationToken cancellationToken)
    {
        while (await WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (TryRead(out _))
            {
            }
        }

        return FinishReason!.Value;
    }

    internal void Write(in GeneratedToken token)
    {
        lock (_gate)
        {
            if (_count == _ring.Length)
            {
                Grow();
            }

            _ring[(_head + _count) % _ring.Length] = token;
            _count++;
            CompletionTokenCount++;
            if (CompletionTokenCount == 1)
            {
                FirstTokenTimestamp = Stopwatch.GetTimestamp();
            }
        }

        WakeReader(cancelled: false);
    }

    internal void Complete(FinishReason reason)
    {
        lock (_gate)
        {
            if (_finish is not null)
            {
                return;
            }

            _finish = reason;
        }

        WakeReader(cancelled: false);
    }

    /// <summary>Resumes a waiting reader on the thread pool (never inline on the serving loop): no allocation.</summary>
    private void WakeReader(bool cancelled)
    {
        lock (_gate)
        {
            if (!_readerWaiting)
            {
                return;
            }

            _readerWaiting = false;
            _wake.SetResult(!cancelled);
        }
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _wake.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _wake.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _wake.OnCompleted(continuation, state, token, flags);

    private void Grow()
    {
        // The reader lags (slow client): keep every token rather than block the serving loop.
        var larger = new GeneratedToken[_ring.Length * 2];
        for (int i = 0; i < _count; i++)
        {
            larger[i] = _ring[(_head + i) % _ring.Length];
        }

        _ring = larger;
        _head = 0;
    }
}
