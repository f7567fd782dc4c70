using System.Diagnostics;
using Halo.Core.Formats;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Halo.Kernels;

/// <summary>
/// Builds the backend that <see cref="BackendOptions.Kind"/> asks for: <c>Cpu</c> the engine's SIMD backend,
/// <c>Gpu</c> the ILGPU backend or a <see cref="GpuUnavailableException"/> saying why not, <c>Auto</c> the GPU
/// when one can hold the model (CUDA, then OpenCL) and otherwise the CPU backend, with one log line giving
/// the reason. This is the one place the daemon, <c>halo run</c> and <c>halo bench</c> pick a backend.
/// </summary>
public static partial class BackendSelector
{
    public static IBackend Create(IModelSource source, BackendOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        ILogger log = logger ?? NullLogger.Instance;
        switch (options.Kind)
        {
            case BackendKind.Cpu:
                return CpuBackend.Create(source, options);
            case BackendKind.Gpu:
                return GpuBackend.Create(source, options, log);
            default:
                long probe = Stopwatch.GetTimestamp();
                if (GpuDevices.MissingDriver() is { } missing)
                {
                    // No driver, so no GPU: decided by a few file checks, without loading the GPU backend (ILGPU)
                    // or throwing, which cost a CPU-only daemon's start 8-30 ms.
                    options.LoadTimings?.Lap("gpu_probe", probe);
                    FallingBackToCpu(log, missing);
                    return CpuBackend.Create(source, options);
                }

                try
                {
                    return GpuBackend.Create(source, options, log);
                }
                catch (GpuUnavailableException e)
                {
                    options.LoadTimings?.Lap("gpu_probe", probe);
                    FallingBackToCpu(log, e.Message);
                    return CpuBackend.Create(source, options);
                }
        }
    }

    [LoggerMessage(EventId = 5010, Level = LogLevel.Information, Message = "Backend auto: using the CPU backend ({Reason})")]
    private static partial void FallingBackToCpu(ILogger logger, string reason);
}
