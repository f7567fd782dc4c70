using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Token embedding lookup from the F16 table (ggml <c>token_embd.weight</c>, [vocab, hidden] rows), stored
/// as pairs of halves per uint (the same buffer serves as the tied LM head). One group per token.
/// </summary>
internal static class Embedding
{
    /// <param name="table">[vocab, hidden / 2] two F16 per uint (element 2i in the low half).</param>
    /// <param name="tokens">[tokens] token ids.</param>
    /// <param name="output">[tokens, hidden].</param>
    public static void Kernel(ArrayView<uint> table, ArrayView<int> tokens, ArrayView<float> output, int hidden)
    {
        int token = Grid.IdxX;
        int pairs = hidden / 2;
        long row = (long)tokens[token] * pairs;
        long outStart = (long)token * hidden;
        for (int p = Group.IdxX; p < pairs; p += Group.DimX)
        {
            uint bits = table[row + p];
            output[outStart + 2 * p] = DeviceMath.HalfToFloat(bits & 0xFFFFu);
            output[outStart + 2 * p + 1] = DeviceMath.HalfToFloat(bits >> 16);
        }
    }

    public static KernelConfig Config(int tokens, int groupSize) => new(tokens, groupSize);
}
