using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Rotary position embedding, NEOX style (pairs i and i + headDim/2), in place on the query and key rows of
/// every token at its own position. cos/sin come from a table [contextLength, headDim / 2] computed once on
/// the host in double precision, so every backend rotates by exactly the same angles. One warp per
/// (token, head) over the query heads followed by the key heads.
/// </summary>
internal static class Rope
{
    /// <param name="queries">[tokens, heads, headDim].</param>
    /// <param name="keys">[tokens, kvHeads, headDim].</param>
    /// <param name="positions">[tokens].</param>
    /// <param name="cos">[contextLength, headDim / 2].</param>
    /// <param name="sin">[contextLength, headDim / 2].</param>
    public static void Kernel(
        ArrayView<float> queries,
        ArrayView<float> keys,
        ArrayView<int> positions,
        ArrayView<float> cos,
        ArrayView<float> sin,
        int heads,
        int kvHeads,
        int headDim)
    {
        int headsPerToken = heads + kvHeads;
        int token = Grid.IdxX / headsPerToken;
        int head = Grid.IdxX - token * headsPerToken;
        int half = headDim / 2;
        long table = (long)positions[token] * half;
        bool isQuery = head < heads;
        long start = isQuery
            ? ((long)token * heads + head) * headDim
            : ((long)token * kvHeads + head - heads) * headDim;
        ArrayView<float> rows = isQuery ? queries : keys;
        for (int i = Group.IdxX; i < half; i += Group.DimX)
        {
            float c = cos[table + i];
            float s = sin[table + i];
            float x0 = rows[start + i];
            float x1 = rows[start + i + half];
            rows[start + i] = x0 * c - x1 * s;
            rows[start + i + half] = x0 * s + x1 * c;
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
}
