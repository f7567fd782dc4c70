using Halo.Engine.Sampling;
using Halo.Testing;

namespace Halo.Engine.Tests.Sampling;

public sealed class SamplerTests
{
    private static float[] Logits(int n, int seed)
    {
        var rng = new Random(seed);
        var l = new float[n];
        for (int i = 0; i < n; i++)
        {
            l[i] = (float)(rng.NextDouble() * 10 - 5);
        }

        return l;
    }

    private static int ArgMax(float[] l)
    {
        int best = 0;
        for (int i = 1; i < l.Length; i++)
        {
            if (l[i] > l[best])
            {
                best = i;
            }
        }

        return best;
    }

    [Fact]
    public void Sample_TemperatureZero_ReturnsArgMax()
    {
        float[] l = Logits(1000, 1);
        var s = new Sampler(1000, SamplingParams.Greedy);
        Assert.Equal(ArgMax(l), s.Sample(l));
    }

    [Fact]
    public void Sample_SameSeed_SameSequence()
    {
        var p = new SamplingParams { Temperature = 1.5f, TopK = 0, TopP = 1f, MinP = 0f, Seed = 42 };
        var a = new Sampler(500, p);
        var b = new Sampler(500, p);
        var c = new Sampler(500, p with { Seed = 43 });
        var sa = new List<int>();
        var sb = new List<int>();
        var sc = new List<int>();
        for (int i = 0; i < 50; i++)
        {
            float[] l = Logits(500, i);
            sa.Add(a.Sample(l));
            sb.Add(b.Sample(l));
            sc.Add(c.Sample(l));
        }

        Assert.Equal(sa, sb);
        Assert.NotEqual(sa, sc);
    }

    [Fact]
    public void Sample_TopKOne_IsGreedy()
    {
        var s = new Sampler(1000, new SamplingParams { Temperature = 5f, TopK = 1, Seed = 1 });
        for (int i = 0; i < 20; i++)
        {
            float[] l = Logits(1000, i);
            Assert.Equal(ArgMax(l), s.Sample(l));
        }
    }

    [Fact]
    public void Sample_TopKThree_OnlyDrawsFromThreeBest()
    {
        float[] l = Logits(200, 9);
        int[] best = Enumerable.Range(0, 200).OrderByDescending(i => l[i]).Take(3).ToArray();
        var s = new Sampler(200, new SamplingParams { Temperature = 100f, TopK = 3, TopP = 1f, MinP = 0f, Seed = 5 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 300; i++)
        {
            seen.Add(s.Sample(l));
        }

        Assert.Equal(best.OrderBy(i => i), seen.OrderBy(i => i));
    }

    [Fact]
    public void Sample_TopKOverLargeVocabulary_DrawsFromExactlyTheKBest()
    {
        // A Llama-3-sized vocabulary whose length is no multiple of a vector, with winners at both ends and
        // in the tail that the vector scan leaves to the scalar loop.
        const int vocab = 128_256 + 3;
        float[] l = Logits(vocab, 11);
        l[0] = 40f;
        l[vocab - 1] = 41f;
        l[vocab - 2] = 39f;
        int[] best = Enumerable.Range(0, vocab).OrderByDescending(i => l[i]).Take(40).ToArray();
        var s = new Sampler(vocab, new SamplingParams { Temperature = 1000f, TopK = 40, TopP = 1f, MinP = 0f, Seed = 3 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 2000; i++)
        {
            seen.Add(s.Sample(l));
        }

        Assert.Equal(best.Order(), seen.Order());
    }

    [Fact]
    public void Sample_PenaltiesOverLargeVocabulary_TopKScansThePenalisedCopyAndLeavesTheLogitsAlone()
    {
        // Without penalties the top-k scan reads the caller's logits; with them, a penalised copy. The two best
        // tokens are penalised out of a top-2 here, so only a scan of the copy finds the next two.
        const int vocab = 128_256;
        float[] l = Logits(vocab, 12);
        l[7] = 50f;
        l[vocab - 5] = 49f;
        l[1000] = 30f;
        l[vocab - 1] = 29f;
        float[] before = (float[])l.Clone();
        var s = new Sampler(vocab, new SamplingParams { Temperature = 1000f, TopK = 2, TopP = 1f, MinP = 0f, PresencePenalty = 100f, Seed = 4 });
        s.Accept(7);
        s.Accept(vocab - 5);
        var seen = new HashSet<int>();
        for (int i = 0; i < 200; i++)
        {
            seen.Add(s.Sample(l));
        }

        Assert.Equal([1000, vocab - 1], seen.Order());
        Assert.Equal(before, l);
    }

    [Fact]
    public void Sample_TopPSmall_KeepsOnlyTheDominantToken()
    {
        var l = new float[10];
        l[4] = 10f;
        var s = new Sampler(10, new SamplingParams { Temperature = 1f, TopK = 0, TopP = 0.5f, MinP = 0f, Seed = 3 });
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(4, s.Sample(l));
        }
    }

    [Fact]
    public void Sample_MinP_DropsUnlikelyTokens()
    {
        var l = new float[] { 0f, 0f, 5f, 4.9f, -10f };
        var s = new Sampler(5, new SamplingParams { Temperature = 1f, TopK = 0, TopP = 1f, MinP = 0.5f, Seed = 8 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 200; i++)
        {
            seen.Add(s.Sample(l));
        }

        Assert.Equal([2, 3], seen.OrderBy(i => i));
    }

    [Fact]
    public void Sample_PenaltiesOnRepeatedToken_ChangeGreedyChoice()
    {
        var l = new float[] { 1f, 3f, 2.5f };
        var rep = new Sampler(3, SamplingParams.Greedy with { RepetitionPenalty = 1.5f });
        rep.Accept(1);
        Assert.Equal(2, rep.Sample(l)); // 3 / 1.5 = 2 < 2.5

        var freq = new Sampler(3, SamplingParams.Greedy with { FrequencyPenalty = 0.3f });
        freq.Accept(1);
        Assert.Equal(1, freq.Sample(l)); // 3 - 0.3 > 2.5
        freq.Accept(1);
        Assert.Equal(2, freq.Sample(l)); // 3 - 0.6 < 2.5

        var presence = new Sampler(3, SamplingParams.Greedy with { PresencePenalty = 1f });
        presence.Accept(1);
        presence.Accept(1);
        Assert.Equal(2, presence.Sample(l)); // 3 - 1 < 2.5, once however often
    }

    [Fact]
    public void Accept_PastWindow_ForgetsOldTokens()
    {
        var l = new float[] { 1f, 3f, 2.5f };
        var s = new Sampler(3, SamplingParams.Greedy with { PresencePenalty = 1f, PenaltyLastN = 2 });
        s.Accept(1);
        s.Accept(0);
        s.Accept(0);
        Assert.Equal(1, s.Sample(l));
    }

    [Fact]
    public void Sample_ManyTokens_AllocatesNothing()
    {
        float[] l = Logits(32000, 2);
        var s = new Sampler(32000, new SamplingParams { Temperature = 0.8f, TopK = 40, TopP = 0.9f, MinP = 0.05f, RepetitionPenalty = 1.1f, Seed = 1 });
        s.Accept(s.Sample(l));

        Assert.Equal(2, SteadyStateAllocations.QuietWindows(() => s.Accept(s.Sample(l)), callsPerWindow: 100));
    }

    [Theory]
    [InlineData(-1f, 40, 0.9f, 0f)]
    [InlineData(1f, -1, 0.9f, 0f)]
    [InlineData(1f, 40, 0f, 0f)]
    [InlineData(1f, 40, 1.5f, 0f)]
    [InlineData(1f, 40, 0.9f, 2f)]
    [InlineData(float.NaN, 40, 0.9f, 0f)]
    public void Constructor_OutOfRangeParameter_Throws(float temperature, int topK, float topP, float minP)
    {
        var p = new SamplingParams { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP };
        Assert.Throws<ArgumentException>(() => new Sampler(10, p));
    }
}
