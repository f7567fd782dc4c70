using Halo.Kernels.Layout;
using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels;

/// <summary>One matrix of a <see cref="DeviceTernaryMatrix"/>: how many of the stack's rows are its, and its per-tensor scale.</summary>
internal readonly record struct TernaryPart(int Rows, float TensorScale);

/// <summary>
/// Ternary weight matrices of the same width uploaded once in <see cref="TernaryLayout"/>, stacked by rows in
/// one allocation (q, k and v; gate and up), each keeping its per-tensor scale: one matmul launch reads them all.
/// </summary>
internal sealed class DeviceTernaryMatrix : IDisposable
{
    /// <summary>Most matrices a stack holds: what one matmul launch can write (<see cref="Kernels.StackedOutputs"/>).</summary>
    public const int MaxParts = 3;

    private readonly MemoryBuffer1D<uint, Stride1D.Dense> _codes;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _scales;
    private readonly TernaryPart[] _parts;

    public DeviceTernaryMatrix(Accelerator accelerator, TernaryLayout layout, float tensorScale)
        : this(accelerator, [layout], [tensorScale])
    {
    }

    public DeviceTernaryMatrix(Accelerator accelerator, ReadOnlySpan<TernaryLayout> layouts, ReadOnlySpan<float> tensorScales)
    {
        if (layouts.Length is 0 or > MaxParts || tensorScales.Length != layouts.Length)
        {
            throw new ArgumentException($"a stack holds 1 to {MaxParts} matrices, each with a tensor scale", nameof(layouts));
        }

        Columns = layouts[0].Columns;
        long words = 0, blocks = 0;
        foreach (TernaryLayout layout in layouts)
        {
            if (layout.Columns != Columns)
            {
                throw new ArgumentException($"stacked matrices must have the same width: {layout.Columns} against {Columns}", nameof(layouts));
            }

            Rows += layout.Rows;
            words += layout.Codes.Length;
            blocks += layout.Scales.Length;
        }

        _codes = accelerator.Allocate1D<uint>(words);
        _scales = accelerator.Allocate1D<float>(blocks);
        _parts = new TernaryPart[layouts.Length];
        long wordStart = 0, blockStart = 0;
        for (int i = 0; i < layouts.Length; i++)
        {
            TernaryLayout layout = layouts[i];
            ArrayView<uint> codes = _codes.View.SubView(wordStart, layout.Codes.Length);
            ArrayView<float> scales = _scales.View.SubView(blockStart, layout.Scales.Length);
            codes.CopyFromCPU(layout.Codes);
            scales.CopyFromCPU(layout.Scales);
            _parts[i] = new TernaryPart(layout.Rows, tensorScales[i]);
            wordStart += layout.Codes.Length;
            blockStart += layout.Scales.Length;
        }
    }

    /// <summary>Rows of all the matrices together.</summary>
    public int Rows { get; }

    public int Columns { get; }

    public int PartCount => _parts.Length;

    public ArrayView<uint> Codes => _codes.View;

    public ArrayView<float> Scales => _scales.View;

    public long Bytes => _codes.LengthInBytes + _scales.LengthInBytes;

    public TernaryPart Part(int index) => _parts[index];

    public void Dispose()
    {
        _codes.Dispose();
        _scales.Dispose();
    }
}
