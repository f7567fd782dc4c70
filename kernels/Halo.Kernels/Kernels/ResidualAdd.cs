using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>The residual connection: <c>x += y</c>, element-wise over [tokens, hidden].</summary>
internal static class ResidualAdd
{
    public static void Kernel(ArrayView<float> residual, ArrayView<float> update, int count)
    {
        int i = Grid.GlobalIndex.X;
        if (i < count)
        {
            residual[i] += update[i];
        }
    }

    public static KernelConfig Config(int count, int warpSize, int warpsPerGroup)
    {
        int group = warpsPerGroup * warpSize;
        return new((count + group - 1) / group, group);
    }
}
