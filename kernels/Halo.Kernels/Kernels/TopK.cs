using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// The k largest logits of each row, sorted (largest first, lower index first on ties), in two passes so a
/// 128k vocabulary is spread over many warps: <see cref="Partial"/> gives each warp a slice of
/// <see cref="SliceLength"/> logits, copied to shared memory, from which it extracts its own top k by k
/// warp-argmax rounds; <see cref="Merge"/> runs the same rounds over the candidates of all slices of a row
/// (at most k per slice). k is at most <see cref="MaxK"/>.
/// </summary>
internal static class TopK
{
    public const int MaxK = 64;
    public const int SliceLength = 1024;

    /// <param name="logits">[rows, width].</param>
    /// <param name="candidateValues">[rows, slices, k].</param>
    /// <param name="candidateIds">[rows, slices, k] (-1 where a slice had fewer than k logits).</param>
    public static void Partial<TLanes>(ArrayView<float> logits, ArrayView<float> candidateValues, ArrayView<int> candidateIds, int width, int k)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        var slice = SharedMemory.Allocate<float>(SliceLength);
        int row = Grid.IdxX;
        int sliceIndex = Grid.IdxY;
        int slices = Grid.DimY;
        int first = sliceIndex * SliceLength;
        int length = width - first < SliceLength ? width - first : SliceLength;
        for (int i = Group.IdxX; i < SliceLength; i += Group.DimX)
        {
            slice[i] = i < length ? logits[(long)row * width + first + i] : 0f;
        }

        Group.Barrier();
        long output = ((long)row * slices + sliceIndex) * k;
        for (int round = 0; round < k; round++)
        {
            float best = float.NegativeInfinity;
            int bestIndex = -1;
            for (int i = Group.IdxX; i < length; i += Group.DimX)
            {
                float value = slice[i];
                if (!IsTaken(value) && DeviceMath.IsBetter(value, i, best, bestIndex))
                {
                    best = value;
                    bestIndex = i;
                }
            }

            Candidate winner = lanes.ArgMax(new Candidate { Value = best, Index = bestIndex });
            bestIndex = winner.Index;
            best = winner.Value;
            if (Group.IdxX == 0)
            {
                candidateValues[output + round] = best;
                candidateIds[output + round] = bestIndex < 0 ? -1 : first + bestIndex;
                if (bestIndex >= 0)
                {
                    slice[bestIndex] = Taken;
                }
            }

            Group.Barrier();
        }
    }

    /// <param name="candidateValues">[rows, candidates] from <see cref="Partial"/> (consumed: taken entries are marked).</param>
    /// <param name="candidateIds">[rows, candidates].</param>
    /// <param name="topValues">[rows, k] sorted.</param>
    /// <param name="topIds">[rows, k] sorted.</param>
    public static void Merge<TLanes>(
        ArrayView<float> candidateValues,
        ArrayView<int> candidateIds,
        ArrayView<float> topValues,
        ArrayView<int> topIds,
        int candidates,
        int k)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        int row = Grid.IdxX;
        long start = (long)row * candidates;
        for (int round = 0; round < k; round++)
        {
            float best = float.NegativeInfinity;
            int bestId = -1;
            int bestSlot = -1;
            for (int i = Group.IdxX; i < candidates; i += Group.DimX)
            {
                int id = candidateIds[start + i];
                float value = candidateValues[start + i];
                if (id >= 0 && !IsTaken(value) && DeviceMath.IsBetter(value, id, best, bestId))
                {
                    best = value;
                    bestId = id;
                    bestSlot = i;
                }
            }

            Candidate winner = lanes.ArgMax(new Candidate { Value = best, Index = bestId });
            if (winner.Index >= 0 && bestId == winner.Index)
            {
                candidateValues[start + bestSlot] = Taken;
            }

            if (Group.IdxX == 0)
            {
                topValues[(long)row * k + round] = winner.Value;
                topIds[(long)row * k + round] = winner.Index;
            }

            Group.Barrier();
        }
    }

    // A NaN marks a taken entry: it never compares greater than anything, and logits are never NaN.
    private const float Taken = float.NaN;

    private static bool IsTaken(float value) => XMath.IsNaN(value);

    public static int Slices(int width) => (width + SliceLength - 1) / SliceLength;

    public static KernelConfig PartialConfig(int rows, int width, int warpSize) =>
        new(new Index3D(rows, Slices(width), 1), new Index3D(warpSize, 1, 1));

    public static KernelConfig MergeConfig(int rows, int warpSize) => new(rows, warpSize);
}
