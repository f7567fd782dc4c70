using Halo.Core.Tokenization;

namespace Halo.Core.Tests.Tokenization;

public sealed class MergeTableTests
{
    [Fact]
    public void Find_RepeatedMerge_KeepsFirstRank()
    {
        var table = new MergeTable(["a b", "c d", "a b"]);

        Assert.Equal(0, Find(table, "a", "b"));
        Assert.Equal(1, Find(table, "c", "d"));
    }

    [Fact]
    public void Find_PairThatIsNoMerge_IsMinusOne()
    {
        var table = new MergeTable(["a b"]);

        Assert.Equal(-1, Find(table, "b", "a"));
        Assert.Equal(-1, Find(table, "a", "bb"));
    }

    [Theory]
    [InlineData("ab")]
    [InlineData("a ")]
    [InlineData(" ")]
    [InlineData("")]
    public void Constructor_MalformedMerge_ThrowsNamingIt(string merge)
    {
        var error = Assert.Throws<ArgumentException>(() => new MergeTable(["x y", merge]));
        Assert.Contains("Merge 1", error.Message);
    }

    private static int Find(MergeTable table, string left, string right)
    {
        var hash = PolynomialHash.OfPair(PolynomialHash.Of(left), PolynomialHash.Of(right, out var shift), shift);
        return table.Find(hash, left, right, out _);
    }
}
