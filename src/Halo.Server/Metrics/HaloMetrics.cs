using Halo.Engine.Scheduling;
using Halo.Server.Inference;
using Prometheus;

namespace Halo.Server.Metrics;

/// <summary>
/// The <c>halo_*</c> metrics of DESIGN.md section 5 in one registry per host. Request-level metrics are
/// observed by the HTTP layer; the serving loop's counters are plain fields read here at scrape time, so the
/// decode path never touches a metric object.
/// </summary>
internal sealed class HaloMetrics
{
    private static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48];
    private static readonly double[] RequestBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

    private readonly Counter _promptTokens;
    private readonly Counter _generationTokens;
    private readonly Gauge _running;
    private readonly Gauge _waiting;
    private readonly Gauge _kvCache;
    private readonly Counter _gcPause;
    private readonly GpuSysfs _gpu;
    private readonly Gauge _gpuBusy;
    private readonly Gauge _gpuMemory;
    private readonly Gauge _gpuTemperature;
    private readonly Gauge _gpuPower;
    private ModelRuntime? _runtime;

    public HaloMetrics(string sysfsRoot)
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        MetricFactory f = Prometheus.Metrics.WithCustomRegistry(Registry);
        _gpu = new GpuSysfs(sysfsRoot);

        Requests = f.CreateCounter("halo_requests_total", "HTTP requests by endpoint and status code.", "endpoint", "code");
        RequestDuration = f.CreateHistogram("halo_request_duration_seconds", "HTTP request duration, to the last byte.",
            new HistogramConfiguration { LabelNames = ["endpoint"], Buckets = RequestBuckets });
        TimeToFirstToken = f.CreateHistogram("halo_time_to_first_token_seconds", "From accepting a generation to its first token.",
            new HistogramConfiguration { Buckets = LatencyBuckets });
        InterTokenLatency = f.CreateHistogram("halo_inter_token_latency_seconds", "Time between consecutive tokens of one generation.",
            new HistogramConfiguration { Buckets = LatencyBuckets });
        QueueTime = f.CreateHistogram("halo_queue_time_seconds", "Time a generation waited for a slot.",
            new HistogramConfiguration { Buckets = LatencyBuckets });
        _promptTokens = f.CreateCounter("halo_prompt_tokens_total", "Prompt tokens fed through the model.");
        _generationTokens = f.CreateCounter("halo_generation_tokens_total", "Tokens generated.");
        _running = f.CreateGauge("halo_requests_running", "Generations holding a slot.");
        _waiting = f.CreateGauge("halo_requests_waiting", "Generations queued for a slot.");
        _kvCache = f.CreateGauge("halo_kv_cache_usage_ratio", "Fraction of KV cache positions in use over all slots.");
        ModelInfo = f.CreateGauge("halo_model_info", "The model being served (value 1).", "model", "backend", "device");
        ModelLoadSeconds = f.CreateGauge("halo_model_load_seconds", "Time to load and warm up the model.");
        _gcPause = f.CreateCounter("halo_gc_pause_seconds_total", "Total time the runtime paused threads for garbage collection.");
        _gpuBusy = f.CreateGauge("halo_gpu_busy_ratio", "GPU busy fraction (amdgpu gpu_busy_percent / 100).");
        _gpuMemory = f.CreateGauge("halo_gpu_memory_used_bytes", "GPU memory in use by pool (amdgpu mem_info_*_used).", "pool");
        _gpuTemperature = f.CreateGauge("halo_gpu_temperature_celsius", "GPU temperature (amdgpu hwmon temp1_input).");
        _gpuPower = f.CreateGauge("halo_gpu_power_watts", "GPU power draw (amdgpu hwmon power1_average or power1_input).");
        Registry.AddBeforeCollectCallback(Collect);
    }

    public CollectorRegistry Registry { get; }

    public Counter Requests { get; }

    public Histogram RequestDuration { get; }

    public Histogram TimeToFirstToken { get; }

    public Histogram InterTokenLatency { get; }

    public Histogram QueueTime { get; }

    public Gauge ModelInfo { get; }

    public Gauge ModelLoadSeconds { get; }

    public void Bind(ModelRuntime runtime) => _runtime = runtime;

    /// <summary>Scrape time: copy the serving loop's plain counters and read the GPU sysfs files.</summary>
    private void Collect()
    {
        _gcPause.IncTo(GC.GetTotalPauseDuration().TotalSeconds);
        if (_runtime?.Scheduler is { } scheduler)
        {
            SchedulerStats stats = scheduler.Stats;
            _promptTokens.IncTo(stats.PromptTokensTotal);
            _generationTokens.IncTo(stats.GenerationTokensTotal);
            _running.Set(stats.Running);
            _waiting.Set(stats.Waiting);
            _kvCache.Set(stats.KvCacheUsage);
        }

        if (_gpu.Read() is { } gpu)
        {
            SetIfKnown(_gpuBusy, gpu.BusyRatio);
            SetIfKnown(_gpuMemory.WithLabels("vram"), gpu.VramUsedBytes);
            SetIfKnown(_gpuMemory.WithLabels("gtt"), gpu.GttUsedBytes);
            SetIfKnown(_gpuMemory.WithLabels("vis_vram"), gpu.VisibleVramUsedBytes);
            SetIfKnown(_gpuTemperature, gpu.TemperatureCelsius);
            SetIfKnown(_gpuPower, gpu.PowerWatts);
        }
    }

    private static void SetIfKnown(Gauge.Child gauge, double? value)
    {
        if (value is { } v)
        {
            gauge.Set(v);
        }
    }

    private static void SetIfKnown(Gauge gauge, double? value)
    {
        if (value is { } v)
        {
            gauge.Set(v);
        }
    }
}
