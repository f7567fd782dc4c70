using Halo.Server.Inference;

namespace Halo.Server.Tests.Inference;

public sealed class StopStringMatcherTests
{
    [Fact]
    public void Push_StopSplitAcrossPieces_HoldsThePrefixAndCutsAtTheStop()
    {
        var matcher = new StopStringMatcher(["END"]);

        Assert.Equal("hello ", matcher.Push("hello E"));
        Assert.Equal("", matcher.Push("N"));
        Assert.False(matcher.Stopped);
        Assert.Equal("", matcher.Push("D and more"));
        Assert.True(matcher.Stopped);
        Assert.Equal("", matcher.Flush());
    }

    [Fact]
    public void Push_PrefixThatDoesNotComplete_IsReleasedLater()
    {
        var matcher = new StopStringMatcher(["END"]);

        Assert.Equal("a", matcher.Push("aEN"));
        Assert.Equal("ENx", matcher.Push("x"));
        Assert.Equal("E", matcher.Push("E") + matcher.Flush());
        Assert.False(matcher.Stopped);
    }

    [Fact]
    public void Push_SeveralStops_EarliestWins()
    {
        var matcher = new StopStringMatcher(["world", "lo w"]);

        Assert.Equal("hel", matcher.Push("hello world"));
        Assert.True(matcher.Stopped);
    }

    [Fact]
    public void Push_NoStops_PassesEverythingThrough()
    {
        var matcher = new StopStringMatcher([]);

        Assert.Equal("abc", matcher.Push("abc"));
        Assert.Equal("", matcher.Flush());
    }
}
