using ILGPU.Algorithms;

namespace Halo.Kernels.Kernels;

/// <summary>
/// The gated feed-forward nonlinearity <c>act(gate) * up</c> with act SiLU (<c>x / (1 + e^-x)</c>, llama.cpp's
/// "bitnet") or squared ReLU (BitNet b1.58 2B4T's "relu2"). <see cref="NormQuantize"/> applies it as it reads
/// the gate row for the feed-forward sub-norm, so it costs no launch of its own.
/// </summary>
internal static class Glu
{
    /// <summary>No gate: the norm reads its input as it is.</summary>
    public const int None = -1;
    public const int Silu = 0;
    public const int Relu2 = 1;

    public static float Apply(float gate, float up, int activation)
    {
        float a = activation == Relu2
            ? (gate > 0f ? gate * gate : 0f)
            : gate / (1f + XMath.Exp(-gate));
        return a * up;
    }
}
