using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// The gated feed-forward nonlinearity, in place on the gate: <c>gate = act(gate) * up</c> with act SiLU
/// (<c>x / (1 + e^-x)</c>, llama.cpp's "bitnet") or squared ReLU (BitNet b1.58 2B4T's "relu2").
/// </summary>
internal static class Glu
{
    public const int Silu = 0;
    public const int Relu2 = 1;
    /// <param name="gate">[count] gate projection, overwritten with the result.</param>
    /// <param name="up">[count] up projection.</param>
    public static void Kernel(ArrayView<float> gate, ArrayView<float> up, int count, int activation)
    {
        int i = Grid.GlobalIndex.X;
        if (i >= count)
        {
            return;
        }

        float g = gate[i];
        float a = activation == Relu2
            ? (g > 0f ? g * g : 0f)
            : g / (1f + XMath.Exp(-g));
        gate[i] = a * up[i];
    }

    public static KernelConfig Config(int count, int warpSize, int warpsPerGroup)
    {
        int group = warpsPerGroup * warpSize;
        return new((count + group - 1) / group, group);
    }
}
