using Halo.Kernels.Layout;
using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels;

/// <summary>A ternary weight matrix uploaded once in <see cref="TernaryLayout"/>, with its per-tensor scale.</summary>
internal sealed class DeviceTernaryMatrix : IDisposable
{
    private readonly MemoryBuffer1D<uint, Stride1D.Dense> _codes;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _scales;

    public DeviceTernaryMatrix(Accelerator accelerator, TernaryLayout layout, float tensorScale)
    {
        Rows = layout.Rows;
        Columns = layout.Columns;
        TensorScale = tensorScale;
        _codes = accelerator.Allocate1D(layout.Codes);
        _scales = accelerator.Allocate1D(layout.Scales);
    }

    public int Rows { get; }

    public int Columns { get; }

    public float TensorScale { get; }

    public ArrayView<uint> Codes => _codes.View;

    public ArrayView<float> Scales => _scales.View;

    public long Bytes => _codes.LengthInBytes + _scales.LengthInBytes;

    public void Dispose()
    {
        _codes.Dispose();
        _scales.Dispose();
    }
}
