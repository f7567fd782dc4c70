using System.Diagnostics;
using System.Text.Json.Nodes;
using Halo.Core.Configuration;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Profiling;
using Halo.Engine.Sampling;
using Halo.Engine.Scheduling;

namespace Halo.Installer.Bench;

/// <summary>
/// `halo bench --parallel N`: concurrent decoding through the daemon's own serving loop, a
/// <see cref="BatchScheduler"/> with N slots that runs every decoding slot in one forward step. One stream, then N
/// streams at once, each with its own short random prompt and <c>--tg</c> tokens drawn with the daemon's default
/// sampling, read by async readers the way the daemon's SSE pump reads them. Reports the aggregate and per-stream
/// decode tok/s, the speed-up of N streams over one, the inter-token latency the readers saw (p50, p99), and the
/// share of the serving loop's time spent outside the forward pass (batch assembly, sampling, delivery).
/// </summary>
internal static class ParallelBench
{
    /// <summary>Prompt tokens per stream: short, so the numbers are about decode, not prefill.</summary>
    public const int PromptTokens = 16;

    public static readonly string[] Metrics =
    [
        "parallel_tps", "parallel_stream_tps", "parallel_single_tps", "parallel_speedup",
        "parallel_itl_p50_ms", "parallel_itl_p99_ms", "parallel_loop_overhead_pct",
    ];

    /// <summary>Runs both rounds on <paramref name="backend"/> (which must hold <paramref name="streams"/> KV
    /// slots of at least <see cref="PromptTokens"/> + <paramref name="tokens"/> positions) and adds the metrics to
    /// <paramref name="result"/>.</summary>
    /// <param name="profile">When set (CPU backend), the N-stream round's forward passes are timed per op and
    /// reported per serving-loop step as <c>parallel_breakdown</c>.</param>
    public static void Measure(IBackend backend, int streams, int tokens, JsonObject result, OpProfile? profile)
    {
        int vocab = backend.Config.VocabSize;
        var options = new SchedulerOptions { Slots = streams, QueueSize = streams };
        using var scheduler = new BatchScheduler(backend, options, parameters => new SequenceSampler(new Sampler(vocab, parameters)));
        var random = new Random(4321);

        // JIT and first-touch of the serving loop's path before anything is timed.
        Run(scheduler, 1, 4, vocab, random, null);
        Round single = Run(scheduler, 1, tokens, vocab, random, null);
        var cpu = backend as CpuBackend;
        if (cpu is not null && profile is not null)
        {
            profile.Reset();
            cpu.Profile = profile;
        }

        Round many = Run(scheduler, streams, tokens, vocab, random, profile);
        if (cpu is not null && profile is not null)
        {
            cpu.Profile = null;
            var breakdown = new JsonObject();
            foreach (Op op in Enum.GetValues<Op>())
            {
                if (op is not (Op.Sampling or Op.Overhead))
                {
                    breakdown[BenchCommand.Name(op)] = many.LoopSteps > 0 ? profile.Milliseconds(op) / many.LoopSteps : 0;
                }
            }

            breakdown["serving_loop"] = many.LoopOtherMsPerStep;
            result["parallel_breakdown"] = breakdown;
        }

        result["parallel_tps"] = many.AggregateTps;
        result["parallel_stream_tps"] = many.AggregateTps / streams;
        result["parallel_single_tps"] = single.AggregateTps;
        // On a tiny model a round can be over before a timed window opens: 0, never an infinity JSON cannot hold.
        result["parallel_speedup"] = single.AggregateTps > 0 ? many.AggregateTps / single.AggregateTps : 0;
        result["parallel_itl_p50_ms"] = many.InterTokenMs(0.50);
        result["parallel_itl_p99_ms"] = many.InterTokenMs(0.99);
        result["parallel_loop_overhead_pct"] = many.LoopOverheadPct;
    }

    /// <summary>Submits <paramref name="streams"/> requests at once and reads them all to the end. The serving
    /// loop's counters (and <paramref name="profile"/>) cover the steps after every stream had its first token:
    /// decode steps, not the prefill of the prompts (to within the one step in flight when that is seen).</summary>
    private static Round Run(BatchScheduler scheduler, int streams, int tokens, int vocab, Random random, OpProfile? profile)
    {
        using var allDecoding = new CountdownEvent(streams);
        var readers = new Task<int>[streams];
        var steps = new long[streams][];       // [streams][tokens] serving-loop timestamp of each token's step
        var arrivals = new long[streams][];    // [streams][tokens] when the reader had it
        var generations = new GenerationStream[streams];
        for (int s = 0; s < streams; s++)
        {
            var prompt = new int[PromptTokens];
            for (int i = 0; i < prompt.Length; i++)
            {
                prompt[i] = random.Next(vocab);
            }

            // The daemon's defaults (temperature, top-k, top-p, min-p); no stop tokens, so every stream runs to
            // max_tokens and all N decode together from their first token to their last.
            var request = new GenerationRequest { PromptTokens = prompt, MaxTokens = tokens, Sampling = new SamplingParams { Seed = (ulong)s + 1 } };
            if (scheduler.TrySubmit(request, out GenerationStream? generation) != SubmitStatus.Accepted)
            {
                throw new InvalidOperationException("the scheduler refused a benchmark stream");
            }

            generations[s] = generation!;
            steps[s] = new long[tokens];
            arrivals[s] = new long[tokens];
            readers[s] = Read(generations[s], steps[s], arrivals[s], allDecoding);
        }

        allDecoding.Wait();
        profile?.Reset();
        SchedulerStats before = scheduler.Stats;
        Task.WaitAll(readers);
        SchedulerStats after = scheduler.Stats;
        for (int s = 0; s < streams; s++)
        {
            if (readers[s].Result != tokens)
            {
                throw new InvalidOperationException($"a benchmark stream ended after {readers[s].Result} of {tokens} tokens ({generations[s].FinishReason}; {scheduler.LastError})");
            }
        }

        return new Round(steps, arrivals, after.Steps - before.Steps,
            Milliseconds(after.BusyTicks - before.BusyTicks), Milliseconds(after.ForwardTicks - before.ForwardTicks));
    }

    private static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>Reads one stream as the daemon's SSE pump does: await, then drain what is there.</summary>
    private static async Task<int> Read(GenerationStream generation, long[] steps, long[] arrivals, CountdownEvent firstToken)
    {
        int n = 0;
        while (await generation.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (generation.TryRead(out GeneratedToken token))
            {
                if (n < steps.Length)
                {
                    steps[n] = token.Timestamp;
                    arrivals[n] = Stopwatch.GetTimestamp();
                }

                if (n == 0)
                {
                    firstToken.Signal();
                }

                n++;
            }
        }

        if (n == 0)
        {
            firstToken.Signal();   // ended without a token (engine fault): Run reports it, not wait forever
        }

        return n;
    }

    /// <summary>The timestamps of one round: steps[s][i] (when token i of stream s was made) and arrivals[s][i]
    /// (when its reader had it); over HTTP both are the arrival.</summary>
    internal sealed class Round(long[][] steps, long[][] arrivals, long loopSteps, double busyMs, double forwardMs)
    {
        /// <summary>Serving-loop steps once every stream was decoding.</summary>
        public long LoopSteps { get; } = loopSteps;

        /// <summary>Time in the serving loop's steps outside the forward pass per step.</summary>
        public double LoopOtherMsPerStep => LoopSteps > 0 ? (busyMs - forwardMs) / LoopSteps : 0;

        public double LoopOverheadPct => busyMs > 0 ? 100.0 * (busyMs - forwardMs) / busyMs : 0;

        /// <summary>
        /// Tokens per second over the window in which every stream decodes: from the step that gave the last
        /// stream its first token (prefill and admission are over) to the step that gave the first stream its last
        /// token. Each token counts at the serving-loop step that made it.
        /// </summary>
        public double AggregateTps
        {
            get
            {
                long start = long.MinValue, end = long.MaxValue;
                foreach (long[] s in steps)
                {
                    start = Math.Max(start, s[0]);
                    end = Math.Min(end, s[^1]);
                }

                long count = 0;
                foreach (long[] s in steps)
                {
                    foreach (long t in s)
                    {
                        count += t > start && t <= end ? 1 : 0;
                    }
                }

                double seconds = Stopwatch.GetElapsedTime(start, end).TotalSeconds;
                return seconds > 0 ? count / seconds : 0;
            }
        }

        /// <summary>The q-quantile (nearest rank) of the gaps between consecutive tokens of a stream as its
        /// reader received them, over all streams, in milliseconds.</summary>
        public double InterTokenMs(double q)
        {
            var gaps = new List<double>();
            foreach (long[] a in arrivals)
            {
                for (int i = 1; i < a.Length; i++)
                {
                    gaps.Add(Stopwatch.GetElapsedTime(a[i - 1], a[i]).TotalMilliseconds);
                }
            }

            if (gaps.Count == 0)
            {
                return 0;
            }

            gaps.Sort();
            return gaps[Math.Clamp((int)Math.Ceiling(q * gaps.Count) - 1, 0, gaps.Count - 1)];
        }
    }
}
