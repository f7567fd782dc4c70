using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>Copies the selected rows (the last token of each chunk) into a dense [rows.Length, width] block for the LM head.</summary>
internal static class GatherRows
{
    public static void Kernel(ArrayView<float> input, ArrayView<int> rows, ArrayView<float> output, int width)
    {
        long from = (long)rows[Grid.IdxX] * width;
        long to = (long)Grid.IdxX * width;
        for (int i = Group.IdxX; i < width; i += Group.DimX)
        {
            output[to + i] = input[from + i];
        }
    }

    public static KernelConfig Config(int rows, int groupSize) => new(rows, groupSize);
}
