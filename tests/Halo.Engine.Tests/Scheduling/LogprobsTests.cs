using Halo.Engine.Scheduling;

namespace Halo.Engine.Tests.Scheduling;

/// <summary>The vectorised log-sum-exp against a double-precision reference.</summary>
public sealed class LogprobsTests
{
    [Theory]
    [InlineData(128256)]   // a LLaMA-3 vocabulary: whole vectors only
    [InlineData(32003)]    // a ragged tail after the vectors
    [InlineData(5)]        // shorter than one vector
    public void LogSumExp_RandomLogits_MatchesDoubleReference(int vocab)
    {
        var random = new Random(vocab);
        var logits = new float[vocab];
        for (int i = 0; i < vocab; i++)
        {
            logits[i] = (float)(random.NextDouble() * 30 - 20);
        }

        logits[vocab / 2] = 25f;   // the maximum, away from the ends
        logits[vocab - 1] = float.NegativeInfinity;   // a masked token adds nothing

        Assert.Equal(Reference(logits), Logprobs.LogSumExp(logits), 4);
    }

    [Fact]
    public void LogSumExp_MaximumInTheTail_IsFound()
    {
        var logits = new float[35];
        logits[34] = 100f;

        Assert.Equal(100f, Logprobs.LogSumExp(logits), 4);
    }

    [Theory]
    [InlineData(128256, 5)]
    [InlineData(37, 3)]    // a ragged tail after the vectors
    [InlineData(4, 4)]     // the whole vocabulary
    public void Top_RandomLogits_AreTheLargestInOrder(int vocab, int n)
    {
        var random = new Random(vocab + n);
        var logits = new float[vocab];
        for (int i = 0; i < vocab; i++)
        {
            logits[i] = (float)(random.NextDouble() * 10);
        }

        logits[vocab - 1] = 11f;   // the most likely is the last, in the tail
        if (vocab > 8)
        {
            logits[3] = logits[5] = 10.5f;   // a tie: the lower id first, as a sequential scan keeps it
        }

        TokenLogprob[] top = Logprobs.Top(logits, n, 2f);

        int[] expected = Enumerable.Range(0, vocab).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(n).ToArray();
        Assert.Equal(expected, top.Select(t => t.TokenId).ToArray());
        Assert.All(top, t => Assert.Equal(logits[t.TokenId] - 2f, t.Logprob));
    }

    private static double Reference(float[] logits)
    {
        double max = double.NegativeInfinity;
        foreach (float l in logits)
        {
            max = Math.Max(max, l);
        }

        double sum = 0;
        foreach (float l in logits)
        {
            sum += Math.Exp(l - max);
        }

        return max + Math.Log(sum);
    }
}
