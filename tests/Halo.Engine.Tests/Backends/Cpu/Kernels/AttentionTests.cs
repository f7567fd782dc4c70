using System.Runtime.InteropServices;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Backends.Cpu.Kernels;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

[Collection(KernelSwitchesCollection.Name)]
public sealed unsafe class AttentionTests
{
    public enum Path
    {
        Scalar,
        Vector256,
        Vector512,
    }

    /// <summary>
    /// Every path against softmax(q K^T / sqrt(hd)) V in double precision, through the cache's own store: head
    /// dims that fill 64-wide slices or not (96, 24), position counts inside one key block, across chunks and
    /// ragged, one and several query heads per KV head, and a second KV head so per-head offsets are exercised.
    /// </summary>
    [Theory]
    [InlineData(Path.Vector512, 128, 4, 150)]
    [InlineData(Path.Vector512, 96, 1, 64)]
    [InlineData(Path.Vector512, 64, 2, 7)]
    [InlineData(Path.Vector256, 128, 4, 150)]
    [InlineData(Path.Vector256, 24, 2, 33)]
    [InlineData(Path.Scalar, 96, 4, 81)]
    [InlineData(Path.Scalar, 6, 1, 1)]
    public void Group_RandomCache_MatchesDoublePrecisionAttention(Path path, int hd, int group, int n)
    {
        if ((path == Path.Vector512 && !Attention.UseVector512) || (path == Path.Vector256 && !Attention.UseVector256 && !Attention.UseVector512))
        {
            return;
        }

        const int kvHeads = 2, head = 1;
        var rng = new Random(hd * 1000 + n);
        using var cache = new KvCache(slots: 1, layers: 1, context: 160, kvHeads, hd);
        var k = new float[n, kvHeads * hd];
        var v = new float[n, kvHeads * hd];
        for (int p = 0; p < n; p++)
        {
            for (int i = 0; i < kvHeads * hd; i++)
            {
                k[p, i] = (float)(rng.NextDouble() * 2 - 1);
                v[p, i] = (float)(rng.NextDouble() * 2 - 1);
            }

            fixed (float* pk = &k[p, 0], pv = &v[p, 0])
            {
                cache.Store(0, 0, p, pk, pv, roundToHalf: false);
            }
        }

        var q = new float[group * hd];
        for (int i = 0; i < q.Length; i++)
        {
            q[i] = (float)(rng.NextDouble() * 4 - 2);
        }

        double[] expected = Reference(q, k, v, head, hd, group, n);
        var output = new float[group * hd];
        float* scores = (float*)NativeMemory.AlignedAlloc((nuint)(group * cache.Capacity * sizeof(float)), 64);
        (bool v512, bool v256) = (Attention.UseVector512, Attention.UseVector256);
        try
        {
            Attention.UseVector512 = path == Path.Vector512;
            Attention.UseVector256 = path == Path.Vector256;
            fixed (float* pq = q, po = output)
            {
                Attention.Group(pq, cache.Keys(0, 0, head), cache.Values(0, 0, head), n, group, hd, scores, cache.Capacity, po, llamaCppNumerics: false);
            }
        }
        finally
        {
            (Attention.UseVector512, Attention.UseVector256) = (v512, v256);
            NativeMemory.AlignedFree(scores);
        }

        for (int i = 0; i < output.Length; i++)
        {
            Assert.True(Math.Abs(output[i] - expected[i]) <= 1e-5, $"output {i}: {output[i]} vs {expected[i]}");
        }
    }

    private static double[] Reference(float[] q, float[,] k, float[,] v, int head, int hd, int group, int n)
    {
        var output = new double[group * hd];
        var weights = new double[n];
        for (int h = 0; h < group; h++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int p = 0; p < n; p++)
            {
                double dot = 0;
                for (int d = 0; d < hd; d++)
                {
                    dot += q[h * hd + d] * (double)k[p, head * hd + d];
                }

                weights[p] = dot / Math.Sqrt(hd);
                max = Math.Max(max, weights[p]);
            }

            for (int p = 0; p < n; p++)
            {
                weights[p] = Math.Exp(weights[p] - max);
                sum += weights[p];
            }

            for (int p = 0; p < n; p++)
            {
                for (int d = 0; d < hd; d++)
                {
                    output[h * hd + d] += weights[p] / sum * v[p, head * hd + d];
                }
            }
        }

        return output;
    }
}
