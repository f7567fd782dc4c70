using Halo.Core.Tokenization;

namespace Halo.Core.Tests.Tokenization;

public sealed class PolynomialHashTests
{
    [Theory]
    [InlineData("a", "b")]
    [InlineData("\u0120the", "re")]
    [InlineData("x", "\u00e9\u4e2d\ud83d\ude00")]
    [InlineData("longer token text here", "and another long one")]
    public void OfPair_TwoTokens_EqualsHashOfTheMergeString(string left, string right)
    {
        var leftHash = PolynomialHash.Of(left);
        var rightHash = PolynomialHash.Of(right, out var rightShift);

        Assert.Equal(PolynomialHash.Of(left + " " + right), PolynomialHash.OfPair(leftHash, rightHash, rightShift));
    }

    [Fact]
    public void Of_DifferentStrings_DifferentHashes()
    {
        var seen = new HashSet<ulong>();
        foreach (var token in Llama3Tokenizer.Model.Tokens)
        {
            Assert.True(seen.Add(PolynomialHash.Of(token)), $"'{token}' collides");
        }
    }
}
