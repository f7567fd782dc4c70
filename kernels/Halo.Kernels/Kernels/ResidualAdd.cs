using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>The residual connection: <c>x += y</c>, element-wise over [tokens, hidden].</summary>
internal static class ResidualAdd
{
    public const int WarpsPerGroup = 4;

    public static void Kernel(ArrayView<float> residual, ArrayView<float> update, int count)
    {
        int i = Grid.GlobalIndex.X;
        if (i < count)
        {
            residual[i] += update[i];
        }
    }

    public static KernelConfig Config(int count, int warpSize)
    {
        int group = WarpsPerGroup * warpSize;
        return new((count + group - 1) / group, group);
    }
}
