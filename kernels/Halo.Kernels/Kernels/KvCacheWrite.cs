using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Appends each token's key and value rows to its slot's cache of one layer. Cache layout
/// [slots, kvHeads, contextLength, headDim]: the positions of one head are contiguous, so attention streams
/// them. <c>rounding</c> (a <see cref="KvRounding"/>) keeps what F16 would (llama.cpp's F16 KV cache under
/// <c>--compat llamacpp</c>) or what BF16 would (the CPU backend's BF16 cache in Halo numerics), so both
/// backends attend over the same values. One group per token.
/// </summary>
internal static class KvCacheWrite
{
    /// <param name="keys">[tokens, kvHeads * headDim] (after RoPE).</param>
    /// <param name="values">[tokens, kvHeads * headDim].</param>
    /// <param name="slots">[tokens] slot of each token.</param>
    /// <param name="positions">[tokens] position of each token.</param>
    /// <param name="keyCache">[slots, kvHeads, contextLength, headDim] of this layer.</param>
    /// <param name="valueCache">same shape.</param>
    public static void Kernel(
        ArrayView<float> keys,
        ArrayView<float> values,
        ArrayView<int> slots,
        ArrayView<int> positions,
        ArrayView<float> keyCache,
        ArrayView<float> valueCache,
        int kvHeads,
        int headDim,
        int contextLength,
        int rounding)
    {
        int token = Grid.IdxX;
        int rowWidth = kvHeads * headDim;
        long slotBase = (long)slots[token] * kvHeads * contextLength * headDim;
        long position = positions[token];
        for (int i = Group.IdxX; i < rowWidth; i += Group.DimX)
        {
            int head = i / headDim;
            int d = i - head * headDim;
            long at = slotBase + ((long)head * contextLength + position) * headDim + d;
            float k = keys[(long)token * rowWidth + i];
            float v = values[(long)token * rowWidth + i];
            keyCache[at] = Round(k, rounding);
            valueCache[at] = Round(v, rounding);
        }
    }

    public static KernelConfig Config(int tokens, int groupSize) => new(tokens, groupSize);

    private static float Round(float x, int rounding) => rounding == (int)KvRounding.Half ? DeviceMath.RoundToHalf(x)
        : rounding == (int)KvRounding.BFloat16 ? DeviceMath.RoundToBFloat16(x) : x;
}
