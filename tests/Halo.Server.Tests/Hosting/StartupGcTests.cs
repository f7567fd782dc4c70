using System.Runtime;
using Halo.Server.Hosting;

namespace Halo.Server.Tests.Hosting;

/// <summary>The daemon start's pause of garbage collection (process-wide state: these tests run one after another).</summary>
public sealed class StartupGcTests
{
    [Fact]
    public void SuspendThenResume_EndsTheRegionAndCollects()
    {
        int before = GC.CollectionCount(GC.MaxGeneration);

        bool suspended = StartupGc.Suspend();
        Assert.True(suspended);
        Assert.Equal(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        StartupGc.Resume(suspended);

        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
        Assert.True(GC.CollectionCount(GC.MaxGeneration) > before);
    }

    [Fact]
    public void Resume_AfterTheStartOutgrewTheBudget_DoesNotThrow()
    {
        bool suspended = StartupGc.Suspend();
        Assert.True(suspended);

        // More than the budget, in pieces the collector may reclaim: it collects, which ends the region.
        for (int i = 0; i < 320; i++)
        {
            GC.KeepAlive(new byte[1 << 20]);
        }

        StartupGc.Resume(suspended);
        Assert.NotEqual(GCLatencyMode.NoGCRegion, GCSettings.LatencyMode);
    }
}
