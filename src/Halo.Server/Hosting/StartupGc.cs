using System.Runtime;

namespace Halo.Server.Hosting;

/// <summary>
/// No garbage collection from the daemon's start to READY=1, then one full collection that hands the start's garbage
/// back. The start allocates tens of MB of short-lived objects (the vocabulary's strings, the tokenizer's tables, the
/// host's own start) while the collector's starting budget is small, so it collected several times over on the very
/// cores that load the model: on 2 cores a fifth of the time to READY=1.
/// </summary>
internal static class StartupGc
{
    // Comfortably more than a 2B model's start allocates; committed, not touched, so it costs no resident memory.
    private const long Budget = 256L << 20;

    /// <summary>Suspends collection; false when the runtime would not (the start then runs as before).</summary>
    public static bool Suspend()
    {
        try
        {
            return GC.TryStartNoGCRegion(Budget);
        }
        catch (ArgumentOutOfRangeException)
        {
            return false; // more than this GC configuration can set aside at once
        }
    }

    /// <summary>Collects again, and now, so the idle daemon does not keep the start's garbage resident.</summary>
    public static void Resume(bool suspended)
    {
        // A start that outgrew the budget has already collected, which ended the region; so can one that outgrows it
        // on another thread between the check and the end.
        if (suspended && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
        {
            try
            {
                GC.EndNoGCRegion();
            }
            catch (InvalidOperationException)
            {
                // the region had ended already
            }
        }

        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
    }
}
