using ILGPU;
using ILGPU.Algorithms;

namespace Halo.Kernels.Kernels;

/// <summary>A (value, index) pair for arg-max reductions; index -1 means "no candidate".</summary>
internal struct Candidate
{
    public float Value;
    public int Index;
}

/// <summary>
/// How the lanes of a (logical) warp combine values: the only backend-specific piece of the kernels, chosen
/// once per accelerator as a type argument (ILGPU specialises the kernels per struct, no runtime dispatch).
/// Every reduction is a butterfly over XOR partners, so both implementations add in the same order and give
/// bit-identical results. Kernels take the lane of a thread as <c>Group.IdxX % Width</c> and its warp as
/// <c>Group.IdxX / Width</c>, and call the reductions from every thread of the group the same number of times.
/// </summary>
internal interface ILaneExchange
{
    /// <summary>Lanes per warp.</summary>
    int Width { get; }

    float Sum(float value);

    int Sum(int value);

    /// <summary>Each of a tile's 8 sums over the warp, each exactly as <see cref="Sum(float)"/> gives it.</summary>
    TileSums Sum(TileSums sums);

    float Max(float value);

    /// <summary>Largest value, lower index on ties (as a sequential scan would pick).</summary>
    Candidate ArgMax(Candidate candidate);
}

/// <summary>
/// Hardware warp shuffles (CUDA warps of 32, ILGPU's CPU accelerator): no shared memory, no barrier.
/// </summary>
internal readonly struct ShuffleLanes : ILaneExchange
{
    public int Width => Warp.WarpSize;

    public float Sum(float value)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1)
        {
            value += Warp.ShuffleXor(value, offset);
        }

        return value;
    }

    public int Sum(int value)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1)
        {
            value += Warp.ShuffleXor(value, offset);
        }

        return value;
    }

    public TileSums Sum(TileSums sums)
    {
        // the eight butterflies advance together: five rounds of eight independent shuffles, not forty in a row
        for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1)
        {
            sums.S0 += Warp.ShuffleXor(sums.S0, offset);
            sums.S1 += Warp.ShuffleXor(sums.S1, offset);
            sums.S2 += Warp.ShuffleXor(sums.S2, offset);
            sums.S3 += Warp.ShuffleXor(sums.S3, offset);
            sums.S4 += Warp.ShuffleXor(sums.S4, offset);
            sums.S5 += Warp.ShuffleXor(sums.S5, offset);
            sums.S6 += Warp.ShuffleXor(sums.S6, offset);
            sums.S7 += Warp.ShuffleXor(sums.S7, offset);
        }

        return sums;
    }

    public float Max(float value)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1)
        {
            value = XMath.Max(value, Warp.ShuffleXor(value, offset));
        }

        return value;
    }

    public Candidate ArgMax(Candidate candidate)
    {
        for (int offset = Warp.WarpSize / 2; offset > 0; offset >>= 1)
        {
            var other = new Candidate { Value = Warp.ShuffleXor(candidate.Value, offset), Index = Warp.ShuffleXor(candidate.Index, offset) };
            if (DeviceMath.IsBetter(other.Value, other.Index, candidate.Value, candidate.Index))
            {
                candidate = other;
            }
        }

        return candidate;
    }
}

/// <summary>
/// Logical warps of 32 lanes exchanging through group shared memory with group barriers: for OpenCL, where
/// ILGPU 1.5.3 emits subgroup shuffles only for Intel devices (AMD's ROCm OpenCL on Strix Halo gets none),
/// and which needs no OpenCL subgroup extension at all. 32 matches RDNA's wave32, so a logical warp is one
/// hardware wave there. Groups are at most <see cref="MaxGroupThreads"/> threads.
/// </summary>
internal readonly struct SharedMemoryLanes : ILaneExchange
{
    public const int LogicalWidth = 32;
    public const int MaxGroupThreads = 128;

    public int Width => LogicalWidth;

    public float Sum(float value)
    {
        var exchange = SharedMemory.Allocate<float>(MaxGroupThreads);
        int thread = Group.IdxX;
        for (int offset = LogicalWidth / 2; offset > 0; offset >>= 1)
        {
            exchange[thread] = value;
            Group.Barrier();
            value += exchange[thread ^ offset];
            Group.Barrier();
        }

        return value;
    }

    public int Sum(int value)
    {
        var exchange = SharedMemory.Allocate<int>(MaxGroupThreads);
        int thread = Group.IdxX;
        for (int offset = LogicalWidth / 2; offset > 0; offset >>= 1)
        {
            exchange[thread] = value;
            Group.Barrier();
            value += exchange[thread ^ offset];
            Group.Barrier();
        }

        return value;
    }

    public TileSums Sum(TileSums sums) => new()
    {
        S0 = Sum(sums.S0),
        S1 = Sum(sums.S1),
        S2 = Sum(sums.S2),
        S3 = Sum(sums.S3),
        S4 = Sum(sums.S4),
        S5 = Sum(sums.S5),
        S6 = Sum(sums.S6),
        S7 = Sum(sums.S7),
    };

    public float Max(float value)
    {
        var exchange = SharedMemory.Allocate<float>(MaxGroupThreads);
        int thread = Group.IdxX;
        for (int offset = LogicalWidth / 2; offset > 0; offset >>= 1)
        {
            exchange[thread] = value;
            Group.Barrier();
            value = XMath.Max(value, exchange[thread ^ offset]);
            Group.Barrier();
        }

        return value;
    }

    public Candidate ArgMax(Candidate candidate)
    {
        var values = SharedMemory.Allocate<float>(MaxGroupThreads);
        var indices = SharedMemory.Allocate<int>(MaxGroupThreads);
        int thread = Group.IdxX;
        for (int offset = LogicalWidth / 2; offset > 0; offset >>= 1)
        {
            values[thread] = candidate.Value;
            indices[thread] = candidate.Index;
            Group.Barrier();
            var other = new Candidate { Value = values[thread ^ offset], Index = indices[thread ^ offset] };
            if (DeviceMath.IsBetter(other.Value, other.Index, candidate.Value, candidate.Index))
            {
                candidate = other;
            }

            Group.Barrier();
        }

        return candidate;
    }
}
