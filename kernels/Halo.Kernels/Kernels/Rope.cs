using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Rotary position embedding, NEOX style (pairs i and i + headDim/2), of every token at its own position, and
/// the append of its keys and values to its slot's cache of one layer. The query rows are rotated in place; the
/// rotated keys and the values go straight to the cache (layout [slots, kvHeads, contextLength, headDim]: a
/// head's positions are contiguous, so attention streams them), one launch for both. cos/sin come from a table
/// [contextLength, headDim / 2] computed once on the host in double precision, so every backend rotates by
/// exactly the same angles. <c>rounding</c> (a <see cref="KvRounding"/>) keeps in the cache what F16 would
/// (llama.cpp's F16 KV cache under <c>--compat llamacpp</c>) or what BF16 would (the CPU backend's BF16 cache in
/// Halo numerics), so both backends attend over the same values. One warp per (token, head) over the query heads
/// followed by the key heads.
/// </summary>
internal static class Rope
{
    /// <param name="queries">[tokens, heads, headDim], rotated in place.</param>
    /// <param name="keys">[tokens, kvHeads, headDim].</param>
    /// <param name="values">[tokens, kvHeads, headDim].</param>
    /// <param name="slots">[tokens] slot of each token.</param>
    /// <param name="positions">[tokens].</param>
    /// <param name="cos">[contextLength, headDim / 2].</param>
    /// <param name="sin">[contextLength, headDim / 2].</param>
    /// <param name="keyCache">[slots, kvHeads, contextLength, headDim] of this layer.</param>
    /// <param name="valueCache">same shape.</param>
    public static void Kernel(
        ArrayView<float> queries,
        ArrayView<float> keys,
        ArrayView<float> values,
        ArrayView<int> slots,
        ArrayView<int> positions,
        ArrayView<float> cos,
        ArrayView<float> sin,
        ArrayView<float> keyCache,
        ArrayView<float> valueCache,
        int heads,
        int kvHeads,
        int headDim,
        int contextLength,
        int rounding)
    {
        int headsPerToken = heads + kvHeads;
        int token = Grid.IdxX / headsPerToken;
        int head = Grid.IdxX - token * headsPerToken;
        int half = headDim / 2;
        long table = (long)positions[token] * half;
        if (head < heads)
        {
            long start = ((long)token * heads + head) * headDim;
            for (int i = Group.IdxX; i < half; i += Group.DimX)
            {
                float c = cos[table + i];
                float s = sin[table + i];
                float x0 = queries[start + i];
                float x1 = queries[start + i + half];
                queries[start + i] = x0 * c - x1 * s;
                queries[start + i + half] = x0 * s + x1 * c;
            }

            return;
        }

        int kvHead = head - heads;
        long row = ((long)token * kvHeads + kvHead) * headDim;
        long cached = (((long)slots[token] * kvHeads + kvHead) * contextLength + positions[token]) * headDim;
        for (int i = Group.IdxX; i < half; i += Group.DimX)
        {
            float c = cos[table + i];
            float s = sin[table + i];
            float x0 = keys[row + i];
            float x1 = keys[row + i + half];
            keyCache[cached + i] = Round(x0 * c - x1 * s, rounding);
            keyCache[cached + i + half] = Round(x0 * s + x1 * c, rounding);
            valueCache[cached + i] = Round(values[row + i], rounding);
            valueCache[cached + i + half] = Round(values[row + i + half], rounding);
        }
    }

    public static KernelConfig Config(int tokens, int heads, int kvHeads, int warpSize) => new(tokens * (heads + kvHeads), warpSize);

    /// <summary>The cos/sin table: angle(pos, i) = pos * theta^(-2i / headDim), as llama.cpp's rope computes it.</summary>
    public static (float[] Cos, float[] Sin) Table(int contextLength, int headDim, float theta)
    {
        int half = headDim / 2;
        var cos = new float[(long)contextLength * half];
        var sin = new float[(long)contextLength * half];
        for (int pos = 0; pos < contextLength; pos++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = pos * Math.Pow(theta, -2.0 * i / headDim);
                cos[(long)pos * half + i] = (float)Math.Cos(angle);
                sin[(long)pos * half + i] = (float)Math.Sin(angle);
            }
        }

        return (cos, sin);
    }

    private static float Round(float x, int rounding) => rounding == (int)KvRounding.Half ? DeviceMath.RoundToHalf(x)
        : rounding == (int)KvRounding.BFloat16 ? DeviceMath.RoundToBFloat16(x) : x;
}
