namespace Halo.Testing;

/// <summary>
/// Proves a hot path allocates nothing per call once warm. The first windows can see one-off runtime work on the
/// calling thread (tier-1 code arriving mid-loop runs class initialisers: 7.7 KB once on CI), so steady state is
/// <c>quietWindows</c> consecutive windows of <c>callsPerWindow</c> calls that allocate nothing at all; a path that
/// allocated per call would never reach it.
/// </summary>
internal static class SteadyStateAllocations
{
    /// <summary>Consecutive allocation-free windows seen (stops at <paramref name="quietWindows"/>); assert it equals that.</summary>
    public static int QuietWindows(Action call, int callsPerWindow, int quietWindows = 2, int maxWindows = 20)
    {
        int quiet = 0;
        for (int window = 0; window < maxWindows && quiet < quietWindows; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < callsPerWindow; i++)
            {
                call();
            }

            quiet = GC.GetAllocatedBytesForCurrentThread() == before ? quiet + 1 : 0;
        }

        return quiet;
    }
}
