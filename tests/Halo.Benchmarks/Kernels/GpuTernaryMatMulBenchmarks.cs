using BenchmarkDotNet.Attributes;
using Halo.Kernels;
using Halo.Kernels.Layout;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace Halo.Benchmarks.Kernels;

/// <summary>
/// The ternary matmul kernel for one token (decode) and a tile of 8 (a batched decode step) on the BitNet b1.58 2B4T matrix shapes,
/// on the first GPU <see cref="GpuDevices"/> picks (CUDA, then OpenCL). Each call launches one kernel and waits.
/// Bytes one token's product reads: n * k / 4 (2-bit codes) + n * k / 64 (block scales) + k (int8 activations); divide by
/// the mean time for the effective bandwidth and compare with the card's roofline.
/// Without a GPU it refuses to run, unless HALO_BENCH_CPU_ACCELERATOR=1 asks for ILGPU's CPU accelerator
/// (which measures the simulator, not the kernels: use it only to check the harness).
/// Run: <c>dotnet run -c Release --project tests/Halo.Benchmarks -- --filter '*GpuTernaryMatMul*'</c>.
/// </summary>
public class GpuTernaryMatMulBenchmarks
{
    private IDisposable? _device;
    private Accelerator _accelerator = null!;
    private KernelSet _kernels = null!;
    private DeviceTernaryMatrix _matrix = null!;
    private MemoryBuffer1D<int, Stride1D.Dense> _activations = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> _scales = null!;
    private MemoryBuffer1D<float, Stride1D.Dense> _output = null!;

    /// <summary>Output rows x input columns: attention q/o (2560 x 2560), FFN gate/up (6912 x 2560), FFN down (2560 x 6912).</summary>
    [Params("2560x2560", "6912x2560", "2560x6912")]
    public string Shape { get; set; } = "2560x2560";

    private int Rows => int.Parse(Shape.AsSpan(0, Shape.IndexOf('x')), System.Globalization.CultureInfo.InvariantCulture);

    private int Columns => int.Parse(Shape.AsSpan(Shape.IndexOf('x') + 1), System.Globalization.CultureInfo.InvariantCulture);

    [GlobalSetup]
    public void Setup()
    {
        OpenDevice();
        int n = Rows, k = Columns;
        var random = new Random(1);
        var values = new sbyte[n * k];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(random.Next(3) - 1);
        }

        var blockScales = new float[n * k / 256];
        Array.Fill(blockScales, 0.02f);
        _matrix = new DeviceTernaryMatrix(_accelerator, TernaryLayout.FromValues(values, blockScales, n, k), 1f);
        var activations = new int[8 * k / 4];
        for (int i = 0; i < activations.Length; i++)
        {
            activations[i] = random.Next();
        }

        _activations = _accelerator.Allocate1D(activations);
        _scales = _accelerator.Allocate1D(Enumerable.Repeat(0.01f, 8).ToArray());
        _output = _accelerator.Allocate1D<float>(8L * n);
        OneToken(); // compile and warm the kernel outside the measurement
    }

    [Benchmark(Baseline = true)]
    public void OneToken()
    {
        _kernels.TernaryMatMul(_matrix, _activations.View, _scales.View, [_output.View], tokens: 1, activationBlock: Columns);
        _accelerator.Synchronize();
    }

    [Benchmark]
    public void EightTokens()
    {
        _kernels.TernaryMatMul(_matrix, _activations.View, _scales.View, [_output.View], tokens: 8, activationBlock: Columns);
        _accelerator.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _matrix.Dispose();
        _activations.Dispose();
        _scales.Dispose();
        _output.Dispose();
        _device?.Dispose();
    }

    private void OpenDevice()
    {
        try
        {
            GpuDevices.Selection selection = GpuDevices.Open(logger: null);
            _device = selection;
            _accelerator = selection.Accelerator;
        }
        catch (GpuUnavailableException) when (Environment.GetEnvironmentVariable("HALO_BENCH_CPU_ACCELERATOR") == "1")
        {
            var context = Context.Create(b => b.CPU(new CPUDevice(32, 4, 1)).EnableAlgorithms());
            _accelerator = context.CreateCPUAccelerator(0);
            _device = new Owner(context, _accelerator);
        }

        _kernels = new KernelSet(_accelerator);
    }

    private sealed class Owner(Context context, Accelerator accelerator) : IDisposable
    {
        public void Dispose()
        {
            accelerator.Dispose();
            context.Dispose();
        }
    }
}
