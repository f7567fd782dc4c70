using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// The LM head: <c>logits[r, v] = sum_i E[v, i] x[r, i]</c> with E the F16 table [vocab, hidden] (tied
/// embedding or <c>output.weight</c>) stored two halves per uint. One warp per vocabulary row (lanes read
/// consecutive pairs, coalesced); grid y runs over the input rows so a batch reads each weight row while it
/// is still in cache. At 128k x 2560 this is the single largest read of a decode step (0.66 GB in F16).
/// </summary>
internal static class LmHeadGemv
{
    /// <param name="table">[vocab, hidden / 2] two F16 per uint.</param>
    /// <param name="input">[rows, hidden].</param>
    /// <param name="logits">[rows, vocab].</param>
    public static void Kernel<TLanes>(ArrayView<uint> table, ArrayView<float> input, ArrayView<float> logits, int vocab, int hidden)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        int lane = Group.IdxX % lanes.Width;
        int v = Grid.IdxX * (Group.DimX / lanes.Width) + Group.IdxX / lanes.Width;
        bool active = v < vocab;

        int row = Grid.IdxY;
        int pairs = hidden / 2;
        long weights = (long)v * pairs;
        long x = (long)row * hidden;
        float sum = 0f;
        int p = lane;
        int step = lanes.Width;
        for (; active && p + 3 * step < pairs; p += 4 * step)
        {
            // four words' loads in flight before the first is used (the head is the step's largest read); the adds keep the one-word order
            uint bits0 = table[weights + p];
            uint bits1 = table[weights + p + step];
            uint bits2 = table[weights + p + 2 * step];
            uint bits3 = table[weights + p + 3 * step];
            sum += PairDot(bits0, input, x + 2 * p);
            sum += PairDot(bits1, input, x + 2 * (p + step));
            sum += PairDot(bits2, input, x + 2 * (p + 2 * step));
            sum += PairDot(bits3, input, x + 2 * (p + 3 * step));
        }

        for (; active && p < pairs; p += step)
        {
            sum += PairDot(table[weights + p], input, x + 2 * p);
        }

        sum = lanes.Sum(sum);
        if (active && lane == 0)
        {
            logits[(long)row * vocab + v] = sum;
        }
    }

    /// <summary>The two halves of <paramref name="bits"/> times the inputs at <paramref name="at"/> and the next.</summary>
    private static float PairDot(uint bits, ArrayView<float> input, long at) =>
        DeviceMath.HalfToFloat(bits & 0xFFFFu) * input[at]
        + DeviceMath.HalfToFloat(bits >> 16) * input[at + 1];

    public static KernelConfig Config(int vocab, int rows, int warpSize, int warpsPerGroup) =>
        new(
            new Index3D((vocab + warpsPerGroup - 1) / warpsPerGroup, rows, 1),
            new Index3D(warpsPerGroup * warpSize, 1, 1));
}
