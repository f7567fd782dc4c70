using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Tests.Reference;
using Microsoft.Extensions.Logging;

namespace Halo.Kernels.Tests;

/// <summary>
/// The selector on whatever machine runs the tests: CI has no GPU (auto falls back to the CPU with a log line,
/// gpu fails with the reason); a machine with a usable CUDA/OpenCL device takes the GPU. Each branch asserts.
/// </summary>
public sealed class BackendSelectorTests
{
    private static readonly bool HasUsableGpu = GpuDevices.Probe().Any(c => c.Usable);

    [Fact]
    public void Create_KindCpu_ReturnsTheCpuBackend()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using IBackend backend = BackendSelector.Create(model, new BackendOptions { Kind = BackendKind.Cpu, Threads = 1 });

        Assert.IsType<CpuBackend>(backend);
        Assert.Equal("cpu", backend.Info.Name);
    }

    [Fact]
    public void Create_KindAuto_TakesTheGpuOrFallsBackWithOneLogLine()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        var log = new ListLogger();
        using IBackend backend = BackendSelector.Create(model, new BackendOptions { Kind = BackendKind.Auto, Threads = 1 }, log);

        if (HasUsableGpu)
        {
            Assert.IsType<GpuBackend>(backend);
        }
        else
        {
            Assert.IsType<CpuBackend>(backend);
            Assert.Contains(log.Lines, line => line.Contains("using the CPU backend", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Create_KindGpu_TakesTheGpuOrThrowsWithTheReason()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        var options = new BackendOptions { Kind = BackendKind.Gpu };

        if (HasUsableGpu)
        {
            using IBackend backend = BackendSelector.Create(model, options);
            Assert.Equal("gpu", backend.Info.Name);
        }
        else
        {
            var error = Assert.Throws<GpuUnavailableException>(() => BackendSelector.Create(model, options));
            Assert.False(string.IsNullOrWhiteSpace(error.Message));
            Assert.Contains("GPU", error.Message, StringComparison.OrdinalIgnoreCase);
        }
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
