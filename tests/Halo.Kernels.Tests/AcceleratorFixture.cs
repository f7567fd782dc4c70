using Halo.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Halo.Kernels.Tests;

/// <summary>
/// One ILGPU context, accelerator and compiled <see cref="KernelSet"/> shared by every test of a collection
/// (ILGPU's CPU accelerator is slow to start and to run: tests share it and keep shapes tiny). Each accelerator
/// kind is a subclass; the test classes are abstract over the fixture, so the same tests run on each.
/// </summary>
public abstract class AcceleratorFixture : IDisposable
{
    private readonly Context _context;

    protected AcceleratorFixture(Func<Context.Builder, Context.Builder> configure, Func<Context, Accelerator> create, LaneExchangeKind? exchange = null)
    {
        _context = Context.Create(builder => configure(builder).EnableAlgorithms());
        Accelerator = create(_context);
        Kernels = new KernelSet(Accelerator, exchange);
    }

    public Accelerator Accelerator { get; }

    internal KernelSet Kernels { get; }

    public MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(T[] data)
        where T : unmanaged => Accelerator.Allocate1D(data);

    public MemoryBuffer1D<T, Stride1D.Dense> Allocate<T>(long length)
        where T : unmanaged
    {
        var buffer = Accelerator.Allocate1D<T>(length);
        buffer.MemSetToZero();
        return buffer;
    }

    public void Dispose()
    {
        Accelerator.Dispose();
        _context.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// ILGPU's CPU accelerator simulating a 32-lane warp (NVIDIA warps, RDNA wave32) and 4 warps per group, the
/// widest group the kernels launch.
/// </summary>
public sealed class CpuAcceleratorFixture() : AcceleratorFixture(b => b.CPU(new CPUDevice(32, 4, 1)), c => c.CreateCPUAccelerator(0));

/// <summary>The first CUDA device; the CUDA test classes are compiled only with <c>-p:HaloCuda=true</c>.</summary>
public sealed class CudaAcceleratorFixture() : AcceleratorFixture(
    b => b.Cuda(),
    c => c.GetCudaDevices().Count > 0
        ? c.CreateCudaAccelerator(0)
        : throw new InvalidOperationException("HaloCuda=true but ILGPU found no CUDA device (driver missing?)"));

/// <summary>
/// The CPU accelerator running the kernels built for OpenCL: logical 32-lane warps exchanging through shared
/// memory and group barriers (see <see cref="Halo.Kernels.Kernels.SharedMemoryLanes"/>), the Strix Halo path.
/// </summary>
public sealed class CpuSharedMemoryAcceleratorFixture() : AcceleratorFixture(b => b.CPU(new CPUDevice(32, 4, 1)), c => c.CreateCPUAccelerator(0), LaneExchangeKind.SharedMemory);

[CollectionDefinition(Name)]
public sealed class CpuSharedMemoryAcceleratorCollection : ICollectionFixture<CpuSharedMemoryAcceleratorFixture>
{
    public const string Name = "ILGPU CPU accelerator, shared-memory lane exchange";
}

/// <summary>
/// The CPU accelerator with 4-lane warps, two per group, for the end-to-end tests: the simulator runs every lane as a
/// thread and every shuffle as a barrier, so a whole forward pass at 128 threads a group would take minutes
/// on a 2-core CI machine. The kernels are generic in the warp size; the 32-lane paths are covered by the
/// kernel tests on <see cref="CpuAcceleratorFixture"/>.
/// </summary>
public sealed class CpuSmallWarpAcceleratorFixture() : AcceleratorFixture(b => b.CPU(new CPUDevice(4, 2, 1)), c => c.CreateCPUAccelerator(0));

[CollectionDefinition(Name)]
public sealed class CpuSmallWarpAcceleratorCollection : ICollectionFixture<CpuSmallWarpAcceleratorFixture>
{
    public const string Name = "ILGPU CPU accelerator, 4-lane warps";
}

[CollectionDefinition(Name)]
public sealed class CpuAcceleratorCollection : ICollectionFixture<CpuAcceleratorFixture>
{
    public const string Name = "ILGPU CPU accelerator";
}

[CollectionDefinition(Name)]
public sealed class CudaAcceleratorCollection : ICollectionFixture<CudaAcceleratorFixture>
{
    public const string Name = "ILGPU CUDA accelerator";
}
