using Halo.Engine.Backends.Cpu;

namespace Halo.Engine.Tests.Backends.Cpu;

public sealed class WorkerPoolTests
{
    [Fact]
    public void Run_ManyDispatches_ExecutesEveryItemExactlyOnce()
    {
        using var pool = new WorkerPool(3);
        var a = new Counting(37);
        var b = new Counting(5);
        for (int round = 1; round <= 200; round++)
        {
            pool.Run(a);
            pool.Run(b);
            Assert.All(a.Counts, c => Assert.Equal(round, c));
            Assert.All(b.Counts, c => Assert.Equal(round, c));
        }
    }

    [Fact]
    public void Run_ItemThrows_RethrowsAfterAllItemsAndPoolStaysUsable()
    {
        using var pool = new WorkerPool(2);
        var failing = new Counting(20) { FailAt = 7 };
        var e = Assert.Throws<InvalidOperationException>(() => pool.Run(failing));
        Assert.IsType<ArithmeticException>(e.InnerException);
        Assert.Equal(19, failing.Counts.Sum());
        var ok = new Counting(10);
        pool.Run(ok);
        Assert.All(ok.Counts, c => Assert.Equal(1, c));
    }

    private sealed class Counting(int items) : ParallelWork
    {
        public int[] Counts { get; } = new int[items];

        public int FailAt { get; init; } = -1;

        protected override int ItemCount => Counts.Length;

        protected override void Execute(int item, int worker)
        {
            if (item == FailAt)
            {
                throw new ArithmeticException("item failed");
            }

            Interlocked.Increment(ref Counts[item]);
        }
    }
}
