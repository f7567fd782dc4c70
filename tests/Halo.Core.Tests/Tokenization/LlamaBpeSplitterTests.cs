using Halo.Core.Tokenization;

namespace Halo.Core.Tests.Tokenization;

public sealed class LlamaBpeSplitterTests
{
    [Theory]
    [InlineData("Hello, world!", new[] { "Hello", ",", " world", "!" })]
    [InlineData("I'M you'Ll WE'VE it's", new[] { "I", "'M", " you", "'Ll", " WE", "'VE", " it", "'s" })]
    [InlineData("1234567 x", new[] { "123", "456", "7", " x" })]
    [InlineData("a   b", new[] { "a", "  ", " b" })]
    [InlineData("a  ", new[] { "a", "  " })]
    [InlineData("x \n\n y", new[] { "x", " \n\n", " y" })]
    [InlineData("\r\n\r\nz", new[] { "\r\n\r\n", "z" })]
    [InlineData("foo...\n\nbar", new[] { "foo", "...\n\n", "bar" })]
    [InlineData(" ?!x", new[] { " ?!", "x" })]
    [InlineData("\u00a0b c", new[] { "\u00a0b", " c" })]
    [InlineData("\u0939\u093f\u0928\u094d\u0926\u0940", new[] { "\u0939", "\u093f\u0928", "\u094d\u0926", "\u0940" })]
    [InlineData("\ud83d\ude00\ud83d\ude00 ok", new[] { "\ud83d\ude00\ud83d\ude00", " ok" })]
    [InlineData("\ud835\udc00\ud835\udc01", new[] { "\ud835\udc00\ud835\udc01" })]
    [InlineData("\u0661\u0662\u0663\u0664", new[] { "\u0661\u0662\u0663", "\u0664" })]
    [InlineData("'", new[] { "'" })]
    [InlineData("", new string[0])]
    public void TryNext_Text_SplitsLikeTheLlama3Regex(string text, string[] expected)
    {
        Assert.Equal(expected, Split(text));
    }

    [Fact]
    public void TryNext_AnyText_CoversEveryCharacterOnce()
    {
        var random = new Random(7);
        const string alphabet = "aZ9 \t\r\n.,'!\u00e9\u00a0\u4e2d\u0301\u200b\ud83d\ude00";
        for (var trial = 0; trial < 500; trial++)
        {
            var chars = new char[random.Next(0, 40)];
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = alphabet[random.Next(alphabet.Length)];
            }

            var text = new string(chars);
            Assert.Equal(text, string.Concat(Split(text)));
        }
    }

    private static List<string> Split(string text)
    {
        var words = new List<string>();
        var splitter = new LlamaBpeSplitter(text);
        while (splitter.TryNext(out var start, out var length))
        {
            Assert.True(length > 0);
            words.Add(text.Substring(start, length));
        }

        return words;
    }
}
