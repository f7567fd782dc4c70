using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Weights;

public sealed unsafe class WeightArenaTests
{
    [Fact]
    public void Take_Slices_AreAlignedZeroedAndDisjoint()
    {
        using var arena = new WeightArena(WeightArena.SliceBytes(100) + WeightArena.SliceBytes(5000));
        byte* a = arena.Take(100);
        byte* b = arena.Take(5000);
        Assert.Equal(0, (long)a % 64);
        Assert.Equal(0, (long)b % 64);
        Assert.True(b >= a + 100);
        Assert.True(new ReadOnlySpan<byte>(a, 100).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(new ReadOnlySpan<byte>(b, 5000).IndexOfAnyExcept((byte)0) < 0);
        new Span<byte>(a, 100).Fill(0xFF);
        Assert.Equal(0, b[0]);
    }

    [Fact]
    public void Take_BeyondCapacity_Throws()
    {
        using var arena = new WeightArena(128);
        _ = arena.Take(64);
        Assert.Throws<InvalidOperationException>(() => arena.Take(65));
    }

    [Fact]
    public void Dispose_Twice_IsHarmlessAndTakeAfterwardThrows()
    {
        var arena = new WeightArena(64);
        arena.Dispose();
        arena.Dispose();
        Assert.Throws<ObjectDisposedException>(() => arena.Take(1));
    }
}
