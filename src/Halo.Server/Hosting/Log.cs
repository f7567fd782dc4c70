using Microsoft.Extensions.Logging;

namespace Halo.Server.Hosting;

/// <summary>The daemon's log events (source-generated: no boxing, no formatting when filtered out).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Loading model {ModelPath}")]
    public static partial void LoadingModel(ILogger logger, string modelPath);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Model {Model} loaded on {Backend} ({Device}) in {LoadSeconds:F2} s; {Slots} slots of {ContextLength} positions")]
    public static partial void ModelLoaded(ILogger logger, string model, string backend, string device, double loadSeconds, int slots, int contextLength);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "MODEL {Model} HAS RANDOM WEIGHTS: it is a synthetic demo model and its output is gibberish. Configure model.path to serve a real model.")]
    public static partial void RandomWeights(ILogger logger, string model);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "Ready: serving {Model} at {Url}")]
    public static partial void Ready(ILogger logger, string model, string url);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Draining: {InFlight} generations in flight, up to {DrainSeconds} s")]
    public static partial void Draining(ILogger logger, int inFlight, double drainSeconds);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Drain timeout: cutting {InFlight} generations")]
    public static partial void DrainTimeout(ILogger logger, int inFlight);

    [LoggerMessage(EventId = 13, Level = LogLevel.Error, Message = "The serving loop did not stop within {GraceSeconds} s of cutting every generation: it is stuck in the engine; stopping anyway")]
    public static partial void LoopWedged(ILogger logger, double graceSeconds);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Drained; stopping")]
    public static partial void Drained(ILogger logger);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Socket activation: listening on {Count} passed socket(s)")]
    public static partial void SocketActivation(ILogger logger, int count);

    [LoggerMessage(EventId = 9, Level = LogLevel.Information, Message = "systemd watchdog every {PeriodSeconds} s, pinging while the serving loop makes progress")]
    public static partial void Watchdog(ILogger logger, double periodSeconds);

    [LoggerMessage(EventId = 10, Level = LogLevel.Error, Message = "Unhandled error serving {Path}")]
    public static partial void UnhandledError(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 11, Level = LogLevel.Error, Message = "Serving loop: forward pass failed: {Error}")]
    public static partial void ForwardFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Listening on {Address}, which is not loopback: set auth.api_keys to require API keys")]
    public static partial void PublicWithoutKeys(ILogger logger, string address);

    [LoggerMessage(EventId = 16, Level = LogLevel.Debug, Message = "Model load phases: {Phases}")]
    public static partial void LoadPhases(ILogger logger, string phases);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "Repack cache: {Message}")]
    public static partial void RepackCacheWarning(ILogger logger, string message);

    [LoggerMessage(EventId = 15, Level = LogLevel.Debug, Message = "Warm-up generation: {Milliseconds:F1} ms; meanwhile the process JIT-compiled {JitMethods} methods in {JitMilliseconds:F1} ms")]
    public static partial void WarmedUp(ILogger logger, double milliseconds, long jitMethods, double jitMilliseconds);
}
