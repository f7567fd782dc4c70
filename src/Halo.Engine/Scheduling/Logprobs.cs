using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Sampling;

namespace Halo.Engine.Scheduling;

/// <summary>Log-probabilities of next-token candidates from raw logits (log-softmax), as OpenAI's
/// <c>logprobs</c> reports them: of the model's distribution before sampling filters.</summary>
public static class Logprobs
{
    /// <summary>
    /// log(sum(exp(logits))), computed stably around the maximum. It runs on the serving loop for every token of
    /// every stream that asks for logprobs, over the whole vocabulary: 16 (or 8) lanes at a time. One MathF.Exp
    /// per logit took about 1 ms over 128k logits, and 8 such streams doubled the step of a GPU that decodes in
    /// 4 ms.
    /// </summary>
    public static unsafe float LogSumExp(ReadOnlySpan<float> logits)
    {
        float max;
        fixed (float* first = logits)
        {
            max = VectorOps.Max(first, logits.Length);
        }

        return max + (float)Math.Log(SumExp(logits, max));
    }

    /// <summary>sum(exp(logits - max)), accumulated in double: a vocabulary of terms near 1 would lose the small ones in float.</summary>
    private static double SumExp(ReadOnlySpan<float> logits, float max)
    {
        ref float first = ref MemoryMarshal.GetReference(logits);
        int i = 0;
        double sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> shift = Vector512.Create(max);
            Vector512<double> lanes = default;
            for (; i + Vector512<float>.Count <= logits.Length; i += Vector512<float>.Count)
            {
                (Vector512<double> low, Vector512<double> high) = Vector512.Widen(Vector512.Exp(Vector512.LoadUnsafe(ref first, (nuint)i) - shift));
                lanes += low + high;
            }

            sum = Vector512.Sum(lanes);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> shift = Vector256.Create(max);
            Vector256<double> lanes = default;
            for (; i + Vector256<float>.Count <= logits.Length; i += Vector256<float>.Count)
            {
                (Vector256<double> low, Vector256<double> high) = Vector256.Widen(Vector256.Exp(Vector256.LoadUnsafe(ref first, (nuint)i) - shift));
                lanes += low + high;
            }

            sum = Vector256.Sum(lanes);
        }

        for (; i < logits.Length; i++)
        {
            sum += MathF.Exp(logits[i] - max);
        }

        return sum;
    }

    /// <summary>
    /// The <paramref name="n"/> most likely tokens, most likely first. Once the list is full, only the runs of logits
    /// that may beat its last entry are looked at (<see cref="ThresholdScan"/>; a scalar scan took 69 us over 128k
    /// logits).
    /// </summary>
    public static TokenLogprob[] Top(ReadOnlySpan<float> logits, int n, float logSumExp)
    {
        n = Math.Min(n, logits.Length);
        var top = new TokenLogprob[n];   // kept sorted, descending
        if (n == 0)
        {
            return top;
        }

        int filled = 0;
        int id = 0;
        for (; filled < n; id++)
        {
            Insert(top, ref filled, id, logits[id]);
        }

        for (int count; id < logits.Length; id += count)
        {
            id = ThresholdScan.Next(logits, id, top[n - 1].Logprob, out count);
            for (int j = id; j < id + count; j++)
            {
                Insert(top, ref filled, j, logits[j]);
            }
        }

        for (int i = 0; i < n; i++)
        {
            top[i] = top[i] with { Logprob = top[i].Logprob - logSumExp };
        }

        return top;
    }

    /// <summary>Puts (id, logit) in its place in the descending list if it belongs there.</summary>
    private static void Insert(TokenLogprob[] top, ref int filled, int id, float logit)
    {
        int n = top.Length;
        if (filled == n && logit <= top[n - 1].Logprob)
        {
            return;
        }

        int at = filled < n ? filled++ : n - 1;
        while (at > 0 && top[at - 1].Logprob < logit)
        {
            top[at] = top[at - 1];
            at--;
        }

        top[at] = new TokenLogprob(id, logit);
    }
}
