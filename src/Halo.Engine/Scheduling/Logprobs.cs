namespace Halo.Engine.Scheduling;

/// <summary>Log-probabilities of next-token candidates from raw logits (log-softmax), as OpenAI's
/// <c>logprobs</c> reports them: of the model's distribution before sampling filters.</summary>
public static class Logprobs
{
    /// <summary>log(sum(exp(logits))), computed stably around the maximum.</summary>
    public static float LogSumExp(ReadOnlySpan<float> logits)
    {
        float max = float.NegativeInfinity;
        foreach (float l in logits)
        {
            max = MathF.Max(max, l);
        }

        double sum = 0;
        foreach (float l in logits)
        {
            sum += MathF.Exp(l - max);
        }

        return max + (float)Math.Log(sum);
    }

    /// <summary>The <paramref name="n"/> most likely tokens, most likely first.</summary>
    public static TokenLogprob[] Top(ReadOnlySpan<float> logits, int n, float logSumExp)
    {
        n = Math.Min(n, logits.Length);
        var top = new TokenLogprob[n];   // kept sorted, descending
        int filled = 0;
        for (int id = 0; id < logits.Length; id++)
        {
            float l = logits[id];
            if (filled == n && l <= top[n - 1].Logprob)
            {
                continue;
            }

            int at = filled < n ? filled++ : n - 1;
            while (at > 0 && top[at - 1].Logprob < l)
            {
                top[at] = top[at - 1];
                at--;
            }

            top[at] = new TokenLogprob(id, l);
        }

        for (int i = 0; i < n; i++)
        {
            top[i] = top[i] with { Logprob = top[i].Logprob - logSumExp };
        }

        return top;
    }
}
