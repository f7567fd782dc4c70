using System.Runtime.InteropServices;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Weights;

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
    /// ragged, one, two and four query heads per KV head (four take the shared-load kernels), a second KV head so
    /// per-head offsets are exercised, and both storages (the reference reads back what BF16 kept).
    /// </summary>
    [Theory]
    [InlineData(Path.Vector512, KvStorage.F32, 128, 4, 150)]
    [InlineData(Path.Vector512, KvStorage.Bf16, 128, 4, 150)]
    [InlineData(Path.Vector512, KvStorage.Bf16, 128, 8, 64)]
    [InlineData(Path.Vector512, KvStorage.F32, 96, 1, 64)]
    [InlineData(Path.Vector512, KvStorage.Bf16, 64, 2, 7)]
    [InlineData(Path.Vector256, KvStorage.F32, 128, 4, 150)]
    [InlineData(Path.Vector256, KvStorage.Bf16, 24, 2, 33)]
    [InlineData(Path.Scalar, KvStorage.F32, 96, 4, 81)]
    [InlineData(Path.Scalar, KvStorage.Bf16, 6, 1, 1)]
    public void Group_RandomCache_MatchesDoublePrecisionAttention(Path path, KvStorage storage, int hd, int group, int n)
    {
        if (!Supported(path))
        {
            return;
        }

        using var data = new CacheData(storage, hd, group, n);
        var output = new float[group * hd];
        WithPath(path, () =>
        {
            fixed (float* pq = data.Q, po = output)
            {
                Attention.Group(pq, data.Keys, data.Values, storage, n, group, hd, data.Scores, data.Cache.Capacity, po, llamaCppNumerics: false);
            }
        });

        AssertClose(data.Expected(n), output);
    }

    /// <summary>
    /// Two consecutive tokens attended together (prefill) give bit for bit what each gets alone: n0 inside a key
    /// block, at and across block and chunk ends (where token 1 needs a block or a chunk token 0 does not), and more
    /// than one chunk, for both storages.
    /// </summary>
    [Theory]
    [InlineData(KvStorage.Bf16, 1)]
    [InlineData(KvStorage.Bf16, 15)]
    [InlineData(KvStorage.Bf16, 16)]
    [InlineData(KvStorage.Bf16, 48)]
    [InlineData(KvStorage.Bf16, 63)]
    [InlineData(KvStorage.Bf16, 64)]
    [InlineData(KvStorage.Bf16, 100)]
    [InlineData(KvStorage.Bf16, 127)]
    [InlineData(KvStorage.Bf16, 128)]
    [InlineData(KvStorage.F32, 63)]
    [InlineData(KvStorage.F32, 130)]
    public void GroupPair_TwoConsecutiveTokens_EqualEachTokenAlone(KvStorage storage, int n0)
    {
        const int hd = 128, group = 4;
        if (!Attention.PairsSupported(group, hd))
        {
            return;
        }

        using var data = new CacheData(storage, hd, group, n0 + 1);
        var rng = new Random(n0);
        float[] q0 = data.Q, q1 = new float[group * hd];
        for (int i = 0; i < q1.Length; i++)
        {
            q1[i] = (float)(rng.NextDouble() * 4 - 2);
        }

        int stride = data.Cache.Capacity;
        float[] alone0 = new float[group * hd], alone1 = new float[group * hd], pair0 = new float[group * hd], pair1 = new float[group * hd];
        float* scores = (float*)NativeMemory.AlignedAlloc((nuint)(2 * group * stride * sizeof(float)), 64);
        try
        {
            fixed (float* pq0 = q0, pq1 = q1, a0 = alone0, a1 = alone1, b0 = pair0, b1 = pair1)
            {
                Attention.Group(pq0, data.Keys, data.Values, storage, n0, group, hd, scores, stride, a0, llamaCppNumerics: false);
                Attention.Group(pq1, data.Keys, data.Values, storage, n0 + 1, group, hd, scores, stride, a1, llamaCppNumerics: false);
                new Span<float>(scores, 2 * group * stride).Fill(float.NaN); // nothing stale may be read
                Attention.GroupPair(pq0, pq1, data.Keys, data.Values, storage, n0, hd, scores, stride, b0, b1);
            }
        }
        finally
        {
            NativeMemory.AlignedFree(scores);
        }

        Assert.Equal(alone0, pair0);
        Assert.Equal(alone1, pair1);
    }

    /// <summary>
    /// One sequence cut into ranges (as decode spreads a long sequence over threads), each attended by
    /// <see cref="Attention.Partial"/> and joined by <see cref="Attention.Merge"/>: the same as attending it whole,
    /// with an empty range (it weighs nothing) and a ragged last one.
    /// </summary>
    [Theory]
    [InlineData(Path.Vector512, KvStorage.Bf16, 4)]
    [InlineData(Path.Vector256, KvStorage.F32, 2)]
    [InlineData(Path.Scalar, KvStorage.Bf16, 1)]
    public void PartialThenMerge_Ranges_MatchWholeAttention(Path path, KvStorage storage, int group)
    {
        if (!Supported(path))
        {
            return;
        }

        const int hd = 64, n = 150;
        using var data = new CacheData(storage, hd, group, n);
        (int P0, int P1)[] ranges = [(0, 64), (64, 64), (64, 128), (128, n)];
        var partials = new float[ranges.Length * group * hd];
        var maxes = new float[ranges.Length * group];
        var sums = new float[ranges.Length * group];
        var output = new float[group * hd];
        WithPath(path, () =>
        {
            fixed (float* pq = data.Q, po = output, pp = partials, pm = maxes, ps = sums)
            {
                for (int r = 0; r < ranges.Length; r++)
                {
                    Attention.Partial(pq, data.Keys, data.Values, storage, ranges[r].P0, ranges[r].P1, group, hd, data.Scores, data.Cache.Capacity,
                        pp + r * group * hd, pm + r * group, ps + r * group, llamaCppNumerics: false);
                }

                Attention.Merge(pp, pm, ps, ranges.Length, group, hd, po);
            }
        });

        AssertClose(data.Expected(n), output);
    }

    [Fact]
    public void Store_Bf16_KeepsTheNearestBFloat16TiesToEven()
    {
        Assert.Equal(0x3F80, HalfBits.SingleToBFloat16(1f));
        Assert.Equal(0x3F80, HalfBits.SingleToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808000))); // tie, even stays
        Assert.Equal(0x3F82, HalfBits.SingleToBFloat16(BitConverter.UInt32BitsToSingle(0x3F818000))); // tie, odd rounds up
        Assert.Equal(0x3F81, HalfBits.SingleToBFloat16(BitConverter.UInt32BitsToSingle(0x3F808001)));
        Assert.Equal(0xBF80, HalfBits.SingleToBFloat16(-1f));
    }

    [Theory]
    [InlineData(128, 37)]
    [InlineData(40, 16)] // 32 elements a vector at a time, 8 one by one
    public void Store_Bf16_KeysAndValuesHoldTheScalarRoundingOfEveryElement(int hd, int position)
    {
        const int kvHeads = 2;
        var rng = new Random(hd);
        float[] k = new float[kvHeads * hd], v = new float[kvHeads * hd];
        for (int i = 0; i < k.Length; i++)
        {
            // Every third element a rounding tie, odd or even, of either sign.
            k[i] = i % 3 == 0 ? BitConverter.UInt32BitsToSingle(0x3F808000u + ((uint)i << 16) | (i % 2 == 0 ? 0 : 0x8000_0000u)) : (float)(rng.NextDouble() * 8 - 4);
            v[i] = i % 3 == 1 ? BitConverter.UInt32BitsToSingle(0x3F818000u + ((uint)i << 16)) : (float)(rng.NextDouble() * 8 - 4);
        }

        using var cache = new KvCache(slots: 1, layers: 1, context: 64, kvHeads, hd, KvStorage.Bf16);
        fixed (float* kp = k, vp = v)
        {
            cache.Store(0, 0, position, kp, vp, roundToHalf: false);
        }

        int block = position / KvCache.KeyBlock, lane = position % KvCache.KeyBlock;
        for (int h = 0; h < kvHeads; h++)
        {
            ushort* keys = (ushort*)cache.Keys(0, 0, h), values = (ushort*)cache.Values(0, 0, h);
            for (int i = 0; i < hd; i++)
            {
                Assert.Equal(HalfBits.SingleToBFloat16(k[h * hd + i]), keys[((long)block * hd + i) * KvCache.KeyBlock + lane]);
                Assert.Equal(HalfBits.SingleToBFloat16(v[h * hd + i]), values[(long)position * hd + i]);
            }
        }
    }

    private static bool Supported(Path path) =>
        !((path == Path.Vector512 && !Attention.UseVector512) || (path == Path.Vector256 && !Attention.UseVector256 && !Attention.UseVector512));

    private static void WithPath(Path path, Action run)
    {
        (bool v512, bool v256) = (Attention.UseVector512, Attention.UseVector256);
        try
        {
            Attention.UseVector512 = path == Path.Vector512;
            Attention.UseVector256 = path == Path.Vector256;
            run();
        }
        finally
        {
            (Attention.UseVector512, Attention.UseVector256) = (v512, v256);
        }
    }

    private static void AssertClose(double[] expected, float[] output)
    {
        for (int i = 0; i < output.Length; i++)
        {
            Assert.True(Math.Abs(output[i] - expected[i]) <= 1e-5, $"output {i}: {output[i]} vs {expected[i]}");
        }
    }

    /// <summary>Random keys and values of two KV heads stored through the cache, and the query of head 1's group.</summary>
    private sealed class CacheData : IDisposable
    {
        private const int KvHeads = 2, Head = 1;
        private readonly float[,] _k, _v;
        private readonly int _hd, _group;

        public CacheData(KvStorage storage, int hd, int group, int n)
        {
            _hd = hd;
            _group = group;
            var rng = new Random(hd * 1000 + n + group);
            Cache = new KvCache(slots: 1, layers: 1, context: 160, KvHeads, hd, storage);
            _k = new float[n, KvHeads * hd];
            _v = new float[n, KvHeads * hd];
            for (int p = 0; p < n; p++)
            {
                for (int i = 0; i < KvHeads * hd; i++)
                {
                    _k[p, i] = (float)(rng.NextDouble() * 2 - 1);
                    _v[p, i] = (float)(rng.NextDouble() * 2 - 1);
                }

                fixed (float* pk = &_k[p, 0], pv = &_v[p, 0])
                {
                    Cache.Store(0, 0, p, pk, pv, roundToHalf: false);
                }

                if (storage == KvStorage.Bf16)
                {
                    for (int i = 0; i < KvHeads * hd; i++)
                    {
                        _k[p, i] = HalfBits.BFloat16ToSingle(HalfBits.SingleToBFloat16(_k[p, i]));
                        _v[p, i] = HalfBits.BFloat16ToSingle(HalfBits.SingleToBFloat16(_v[p, i]));
                    }
                }
            }

            Q = new float[group * hd];
            for (int i = 0; i < Q.Length; i++)
            {
                Q[i] = (float)(rng.NextDouble() * 4 - 2);
            }

            Scores = (float*)NativeMemory.AlignedAlloc((nuint)(group * Cache.Capacity * sizeof(float)), 64);
        }

        public KvCache Cache { get; }

        public float[] Q { get; }

        public float* Scores { get; }

        public byte* Keys => Cache.Keys(0, 0, Head);

        public byte* Values => Cache.Values(0, 0, Head);

        public double[] Expected(int n) => Reference(Q, _k, _v, Head, _hd, _group, n);

        public void Dispose()
        {
            NativeMemory.AlignedFree(Scores);
            Cache.Dispose();
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
