using ILGPU;
using ILGPU.Algorithms;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Reductions over a whole group of warps, for the kernels that give one row to a group rather than to a warp
/// (a single decode token leaves a one-warp kernel latency-bound: 80 dependent memory waits for a 2560-wide
/// row). Each warp reduces with its lanes, the warp leaders meet in shared memory, and every thread adds the
/// warps' results in warp order, so the result does not depend on scheduling and both lane exchanges agree.
/// Every thread of the group must call it.
/// </summary>
internal static class GroupReduce
{
    /// <summary>Most warps a group holds (<see cref="KernelSet.GroupSize"/> never exceeds it): 512 threads of 32-lane warps.</summary>
    public const int MaxWarps = 16;

    public static float Sum<TLanes>(float value)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        var partials = SharedMemory.Allocate<float>(MaxWarps);
        value = lanes.Sum(value);
        if (Group.IdxX % lanes.Width == 0)
        {
            partials[Group.IdxX / lanes.Width] = value;
        }

        Group.Barrier();
        float total = partials[0];
        for (int warp = 1; warp < Group.DimX / lanes.Width; warp++)
        {
            total += partials[warp];
        }

        Group.Barrier(); // a later reduction of the same kernel reuses the slots
        return total;
    }

    public static float Max<TLanes>(float value)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        var partials = SharedMemory.Allocate<float>(MaxWarps);
        value = lanes.Max(value);
        if (Group.IdxX % lanes.Width == 0)
        {
            partials[Group.IdxX / lanes.Width] = value;
        }

        Group.Barrier();
        float max = partials[0];
        for (int warp = 1; warp < Group.DimX / lanes.Width; warp++)
        {
            max = XMath.Max(max, partials[warp]);
        }

        Group.Barrier();
        return max;
    }

    /// <summary>Largest value, lower index on ties, over the group.</summary>
    public static Candidate ArgMax<TLanes>(Candidate candidate)
        where TLanes : struct, ILaneExchange
    {
        TLanes lanes = default;
        var values = SharedMemory.Allocate<float>(MaxWarps);
        var indices = SharedMemory.Allocate<int>(MaxWarps);
        candidate = lanes.ArgMax(candidate);
        if (Group.IdxX % lanes.Width == 0)
        {
            values[Group.IdxX / lanes.Width] = candidate.Value;
            indices[Group.IdxX / lanes.Width] = candidate.Index;
        }

        Group.Barrier();
        var best = new Candidate { Value = values[0], Index = indices[0] };
        for (int warp = 1; warp < Group.DimX / lanes.Width; warp++)
        {
            if (DeviceMath.IsBetter(values[warp], indices[warp], best.Value, best.Index))
            {
                best = new Candidate { Value = values[warp], Index = indices[warp] };
            }
        }

        Group.Barrier();
        return best;
    }
}
