using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// Attention of one token for the query heads that share one KV head (a GQA group): for each head h,
/// out[h] = softmax(q[h] K^T / sqrt(head_dim)) V over positions [0, n) of the token's slot, with K and V in the
/// layout and storage of <see cref="KvCache"/>. Scores come 16 positions at a time from the transposed key blocks
/// (one multiply-add per dimension, no horizontal sums). Positions go in chunks of <see cref="Chunk"/>; within a
/// chunk four heads at a time share each key and value load (and its BF16 widening), so a group's cache is read
/// from memory once. <see cref="Partial"/> covers a range of positions and <see cref="Merge"/> joins ranges, so
/// one long sequence can be spread over several threads (flash-decoding). <see cref="GroupPair"/> attends two
/// consecutive tokens of one sequence in one pass over the cache (prefill). Paths: Vector512, Vector256, scalar.
/// </summary>
public static unsafe class Attention
{
    private const int KeyBlock = KvCache.KeyBlock;

    /// <summary>Positions per chunk; a <see cref="Partial"/> range starts on a multiple of it.</summary>
    public const int Chunk = 4 * KeyBlock;

    public static bool UseVector512 { get; set; } = Vector512.IsHardwareAccelerated;

    public static bool UseVector256 { get; set; } = Vector256.IsHardwareAccelerated;

    /// <summary>
    /// q and output [group, hd]; scores [group, scoreStride] scratch with scoreStride at least n rounded up to 16.
    /// In llama.cpp numerics q and the probabilities are rounded to F16, as ggml multiplies them with its F16 cache.
    /// </summary>
    public static void Group(float* q, byte* keys, byte* values, KvStorage storage, int n, int group, int hd, float* scores, int scoreStride,
        float* output, bool llamaCppNumerics)
    {
        float* maxes = stackalloc float[group];
        float* sums = stackalloc float[group];
        Partial(q, keys, values, storage, 0, n, group, hd, scores, scoreStride, output, maxes, sums, llamaCppNumerics);
        for (int h = 0; h < group; h++)
        {
            VectorOps.Scale(output + h * hd, hd, 1f / sums[h]);
        }
    }

    /// <summary>
    /// The unnormalised attention of the group over positions [p0, p1) (p0 a multiple of <see cref="Chunk"/>):
    /// for each head, m = max score, output = sum_p e^(s_p - m) V_p and sums = sum_p e^(s_p - m). In llama.cpp
    /// numerics the probabilities are normalised (and rounded) before V, so sums are 1: it takes whole ranges only.
    /// </summary>
    public static void Partial(float* q, byte* keys, byte* values, KvStorage storage, int p0, int p1, int group, int hd, float* scores,
        int scoreStride, float* output, float* maxes, float* sums, bool llamaCppNumerics)
    {
        if (llamaCppNumerics)
        {
            VectorOps.RoundToHalf(q, group * hd);
        }

        if (storage == KvStorage.Bf16)
        {
            Partial<Bf16Elements>(q, keys, values, p0, p1, group, hd, scores, scoreStride, output, maxes, sums, llamaCppNumerics);
        }
        else
        {
            Partial<F32Elements>(q, keys, values, p0, p1, group, hd, scores, scoreStride, output, maxes, sums, llamaCppNumerics);
        }
    }

    /// <summary>Whether <see cref="GroupPair"/> can run for this group size and head dimension.</summary>
    public static bool PairsSupported(int group, int hd) => UseVector512 && group == PairHeads && hd % 64 == 0;

    private const int PairHeads = 4;

    /// <summary>
    /// <see cref="Group"/> for two consecutive tokens of one sequence, the second one position later: token 0 attends
    /// over n0 positions, token 1 over n0 + 1. Each widened key and value vector serves both tokens' 4 heads, 8
    /// multiply-adds instead of 4, which halves the cache reads of a prefill, where every token of a chunk reads the
    /// same cache. Both outputs are bit for bit <see cref="Group"/>'s: every score and every output element is the
    /// same multiply-add sequence, token 0's extra position gets probability 0 after its softmax over n0, and a last
    /// chunk that token 0 does not fill goes token by token, each by <see cref="Partial"/>'s own step
    /// (<see cref="ScoreChunk"/>). q and output [2][4, hd], 2 x 4 heads' rows of scores, <paramref name="scoreStride"/>
    /// apart. A 2048-token prompt in 256-token chunks, 2 threads, 3 interleaved pairs: 7149-7361 -> 6792-6983 ms, the
    /// last chunk's attention 491-506 -> 442-456 ms (the multiply-adds, not the reads, are most of what is left).
    /// </summary>
    public static void GroupPair(float* q0, float* q1, byte* keys, byte* values, KvStorage storage, int n0, int hd, float* scores,
        int scoreStride, float* output0, float* output1)
    {
        if (storage == KvStorage.Bf16)
        {
            GroupPair<Bf16Elements>(q0, q1, keys, values, n0, hd, scores, scoreStride, output0, output1);
        }
        else
        {
            GroupPair<F32Elements>(q0, q1, keys, values, n0, hd, scores, scoreStride, output0, output1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GroupPair<TKv>(float* q0, float* q1, byte* keys, byte* values, int n0, int hd, float* scores, int scoreStride,
        float* output0, float* output1) where TKv : struct, IKvElements
    {
        int n1 = n0 + 1;
        float scale = 1f / MathF.Sqrt(hd);
        float* scores1 = scores + PairHeads * (long)scoreStride; // token 1's rows after token 0's
        PrefetchStart(keys, (long)(n1 + KeyBlock - 1) / KeyBlock * KeyBlock * hd * TKv.Size);
        PrefetchStart(values, (long)n1 * hd * TKv.Size);
        for (int c = 0; c < n1; c += Chunk)
        {
            byte* kc = keys + (long)c * hd * TKv.Size;
            byte* nextKeys = c + Chunk < n1 ? kc + (long)Chunk * hd * TKv.Size : null, vc = values + (long)c * hd * TKv.Size;
            if (Blocks(n0 - c) == 4)
            {
                ScoreTwoTokens512<TKv>(kc, q0, q1, hd, scores + c, scoreStride, scale, 0, nextKeys, vc);
                ScoreTwoTokens512<TKv>(kc, q0, q1, hd, scores + c, scoreStride, scale, 2, null, vc);
                continue;
            }

            ScoreChunk<TKv>(kc, q0, hd, PairHeads, Blocks(n0 - c), scores + c, scoreStride, scale, nextKeys, vc);
            ScoreChunk<TKv>(kc, q1, hd, PairHeads, Blocks(n1 - c), scores1 + c, scoreStride, scale, nextKeys, vc);
        }

        double* sums = stackalloc double[2 * PairHeads];
        for (int h = 0; h < PairHeads; h++)
        {
            float* p0 = scores + (long)h * scoreStride;
            sums[h] = VectorOps.Exponentiate(p0, n0, out _);
            p0[n0] = 0f;
            sums[PairHeads + h] = VectorOps.Exponentiate(scores1 + (long)h * scoreStride, n1, out _);
            new Span<float>(output0 + h * hd, hd).Clear();
            new Span<float>(output1 + h * hd, hd).Clear();
        }

        for (int c = 0; c < n1; c += Chunk)
        {
            AccumulateTwoTokens512<TKv>(values + (long)c * hd * TKv.Size, scores + c, scoreStride, Math.Min(Chunk, n1 - c), hd, output0, output1);
        }

        for (int h = 0; h < PairHeads; h++)
        {
            VectorOps.Scale(output0 + h * hd, hd, 1f / (float)sums[h]);
            VectorOps.Scale(output1 + h * hd, hd, 1f / (float)sums[PairHeads + h]);
        }
    }

    /// <summary>Key blocks of the chunk whose first position leaves <paramref name="left"/> positions (at most 4; 0 when none).</summary>
    private static int Blocks(int left) => (Math.Clamp(left, 0, Chunk) + KeyBlock - 1) / KeyBlock;

    /// <summary>
    /// Scores of one token's <paramref name="group"/> heads (q [group, hd]; rows of s <paramref name="scoreStride"/>
    /// apart) against the <paramref name="blocks"/> key blocks of the chunk at <paramref name="kc"/>: four heads at a
    /// time where the chunk is whole, head by head otherwise. nextKeys and values as <see cref="ScoreFourHeads512"/>.
    /// </summary>
    private static void ScoreChunk<TKv>(byte* kc, float* q, int hd, int group, int blocks, float* s, int scoreStride, float scale,
        byte* nextKeys, byte* values) where TKv : struct, IKvElements
    {
        int h = 0;
        if (UseVector512 && blocks == 4)
        {
            for (; h + 4 <= group; h += 4)
            {
                ScoreFourHeads512<TKv>(kc, q + h * hd, hd, s + (long)h * scoreStride, scoreStride, scale, nextKeys, values);
            }
        }

        for (; h < group; h++)
        {
            ScoreBlocks<TKv>(kc, q + h * hd, hd, blocks, s + (long)h * scoreStride, scale);
        }
    }

    /// <summary>
    /// Scores of two tokens' 4 heads (q0, q1 [4, hd]; rows 0..3 and 4..7 of s, <paramref name="scoreStride"/> apart)
    /// against key blocks <paramref name="first"/> and <paramref name="first"/> + 1 of a chunk: 16 accumulators, each
    /// widened key vector serving 8 multiply-adds; per score the same sequence as <see cref="ScoreFourHeads512"/>.
    /// The call for blocks 0 and 1 asks for the next chunk's keys and this chunk's values, as that method does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoreTwoTokens512<TKv>(byte* k, float* q0, float* q1, int hd, float* s, int scoreStride, float scale, int first,
        byte* nextKeys, byte* values) where TKv : struct, IKvElements
    {
        long block = (long)hd * KeyBlock * TKv.Size;
        k += first * block;
        Vector512<float> a00 = default, a01 = default, a10 = default, a11 = default, a20 = default, a21 = default, a30 = default, a31 = default;
        Vector512<float> b00 = default, b01 = default, b10 = default, b11 = default, b20 = default, b21 = default, b30 = default, b31 = default;
        for (int d = 0; d < hd; d++)
        {
            if (first == 0)
            {
                PrefetchDimension<TKv>(nextKeys, values, d);
            }

            byte* kd = k + (long)d * KeyBlock * TKv.Size;
            Vector512<float> k0 = TKv.Load512(kd), k1 = TKv.Load512(kd + block);
            MultiplyAddPair(k0, k1, q0[d], ref a00, ref a01);
            MultiplyAddPair(k0, k1, q0[hd + d], ref a10, ref a11);
            MultiplyAddPair(k0, k1, q0[2 * hd + d], ref a20, ref a21);
            MultiplyAddPair(k0, k1, q0[3 * hd + d], ref a30, ref a31);
            MultiplyAddPair(k0, k1, q1[d], ref b00, ref b01);
            MultiplyAddPair(k0, k1, q1[hd + d], ref b10, ref b11);
            MultiplyAddPair(k0, k1, q1[2 * hd + d], ref b20, ref b21);
            MultiplyAddPair(k0, k1, q1[3 * hd + d], ref b30, ref b31);
        }

        Vector512<float> vs = Vector512.Create(scale);
        s += first * KeyBlock;
        StorePair(s, a00 * vs, a01 * vs);
        StorePair(s + scoreStride, a10 * vs, a11 * vs);
        StorePair(s + 2L * scoreStride, a20 * vs, a21 * vs);
        StorePair(s + 3L * scoreStride, a30 * vs, a31 * vs);
        StorePair(s + 4L * scoreStride, b00 * vs, b01 * vs);
        StorePair(s + 5L * scoreStride, b10 * vs, b11 * vs);
        StorePair(s + 6L * scoreStride, b20 * vs, b21 * vs);
        StorePair(s + 7L * scoreStride, b30 * vs, b31 * vs);
    }

    /// <summary>
    /// Dimension d's share of a chunk's prefetches: its bytes of the next chunk's keys (<paramref name="nextKeys"/>,
    /// null for the last chunk) into L1 and of this chunk's values into L2, as <see cref="ScoreFourHeads512"/> says.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchDimension<TKv>(byte* nextKeys, byte* values, int d) where TKv : struct, IKvElements
    {
        int perDim = Chunk * TKv.Size; // bytes of a chunk's keys (and of its values) per dimension step
        for (int line = 0; line < perDim; line += 64)
        {
            if (nextKeys != null)
            {
                Sse.Prefetch0(nextKeys + (long)d * perDim + line);
            }

            Sse.Prefetch1(values + (long)d * perDim + line);
        }
    }

    /// <summary>a += v0 * x, b += v1 * x: one broadcast scalar against two vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAddPair(Vector512<float> v0, Vector512<float> v1, float x, ref Vector512<float> a, ref Vector512<float> b)
    {
        Vector512<float> broadcast = Vector512.Create(x);
        a = Vector512.FusedMultiplyAdd(v0, broadcast, a);
        b = Vector512.FusedMultiplyAdd(v1, broadcast, b);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePair(float* s, Vector512<float> b0, Vector512<float> b1)
    {
        b0.Store(s);
        b1.Store(s + 16);
    }

    /// <summary>
    /// output0[h] += sum_p w[h, p] V[p] and output1[h] += sum_p w[4 + h, p] V[p] (weight rows
    /// <paramref name="weightStride"/> apart) for the 4 heads, 32 dimensions at a time: each widened value vector
    /// serves 8 multiply-adds; per element the same sequence as <see cref="AccumulateFourHeads512"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateTwoTokens512<TKv>(byte* v, float* w, int weightStride, int count, int hd, float* output0, float* output1)
        where TKv : struct, IKvElements
    {
        long rowBytes = (long)hd * TKv.Size;
        for (int i = 0; i < hd; i += 32)
        {
            float* o0 = output0 + i, o1 = o0 + hd, o2 = o1 + hd, o3 = o2 + hd;
            float* p0 = output1 + i, p1 = p0 + hd, p2 = p1 + hd, p3 = p2 + hd;
            Vector512<float> a00 = Vector512.Load(o0), a01 = Vector512.Load(o0 + 16), a10 = Vector512.Load(o1), a11 = Vector512.Load(o1 + 16);
            Vector512<float> a20 = Vector512.Load(o2), a21 = Vector512.Load(o2 + 16), a30 = Vector512.Load(o3), a31 = Vector512.Load(o3 + 16);
            Vector512<float> b00 = Vector512.Load(p0), b01 = Vector512.Load(p0 + 16), b10 = Vector512.Load(p1), b11 = Vector512.Load(p1 + 16);
            Vector512<float> b20 = Vector512.Load(p2), b21 = Vector512.Load(p2 + 16), b30 = Vector512.Load(p3), b31 = Vector512.Load(p3 + 16);
            byte* vi = v + (long)i * TKv.Size;
            for (int p = 0; p < count; p++)
            {
                byte* vp = vi + p * rowBytes;
                Vector512<float> v0 = TKv.Load512(vp), v1 = TKv.Load512(vp + 16 * TKv.Size);
                MultiplyAddPair(v0, v1, w[p], ref a00, ref a01);
                MultiplyAddPair(v0, v1, w[weightStride + p], ref a10, ref a11);
                MultiplyAddPair(v0, v1, w[2L * weightStride + p], ref a20, ref a21);
                MultiplyAddPair(v0, v1, w[3L * weightStride + p], ref a30, ref a31);
                MultiplyAddPair(v0, v1, w[4L * weightStride + p], ref b00, ref b01);
                MultiplyAddPair(v0, v1, w[5L * weightStride + p], ref b10, ref b11);
                MultiplyAddPair(v0, v1, w[6L * weightStride + p], ref b20, ref b21);
                MultiplyAddPair(v0, v1, w[7L * weightStride + p], ref b30, ref b31);
            }

            StorePair(o0, a00, a01);
            StorePair(o1, a10, a11);
            StorePair(o2, a20, a21);
            StorePair(o3, a30, a31);
            StorePair(p0, b00, b01);
            StorePair(p1, b10, b11);
            StorePair(p2, b20, b21);
            StorePair(p3, b30, b31);
        }
    }

    /// <summary>
    /// output[h] = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s over <paramref name="splits"/> partial results
    /// (o [splits, group, hd], m and l [splits, group]) of one group, M the largest m_s.
    /// </summary>
    public static void Merge(float* partials, float* maxes, float* sums, int splits, int group, int hd, float* output)
    {
        for (int h = 0; h < group; h++)
        {
            float m = float.NegativeInfinity;
            for (int s = 0; s < splits; s++)
            {
                m = MathF.Max(m, maxes[s * group + h]);
            }

            float* o = output + h * hd;
            new Span<float>(o, hd).Clear();
            float total = 0f;
            for (int s = 0; s < splits; s++)
            {
                // A range with no positions has m = -inf and weighs exactly 0.
                float weight = MathF.Exp(maxes[s * group + h] - m);
                total += weight * sums[s * group + h];
                float* part = partials + ((long)s * group + h) * hd;
                for (int i = 0; i < hd; i++)
                {
                    o[i] += weight * part[i];
                }
            }

            VectorOps.Scale(o, hd, 1f / total);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Partial<TKv>(float* q, byte* keys, byte* values, int p0, int p1, int group, int hd, float* scores, int scoreStride,
        float* output, float* maxes, float* sums, bool llamaCppNumerics) where TKv : struct, IKvElements
    {
        int n = p1 - p0;
        float scale = 1f / MathF.Sqrt(hd);
        byte* k = keys + (long)p0 * hd * TKv.Size, v = values + (long)p0 * hd * TKv.Size;
        PrefetchStart(k, (long)(n + KeyBlock - 1) / KeyBlock * KeyBlock * hd * TKv.Size);
        PrefetchStart(v, (long)n * hd * TKv.Size);
        for (int c = 0; c < n; c += Chunk)
        {
            byte* kc = k + (long)c * hd * TKv.Size;
            ScoreChunk<TKv>(kc, q, hd, group, Blocks(n - c), scores + c, scoreStride, scale,
                c + Chunk < n ? kc + (long)Chunk * hd * TKv.Size : null, v + (long)c * hd * TKv.Size);
        }

        for (int h = 0; h < group; h++)
        {
            float* probabilities = scores + (long)h * scoreStride;
            // An empty range gives max -inf and sum 0: it weighs nothing in the merge.
            double sum = VectorOps.Exponentiate(probabilities, n, out maxes[h]);
            if (llamaCppNumerics)
            {
                VectorOps.Scale(probabilities, n, (float)(1.0 / sum));
                VectorOps.RoundToHalf(probabilities, n);
                sum = 1;
            }

            sums[h] = (float)sum;
            new Span<float>(output + h * hd, hd).Clear();
        }

        for (int c = 0; c < n; c += Chunk)
        {
            int count = Math.Min(Chunk, n - c);
            byte* vc = v + (long)c * hd * TKv.Size;
            int h = 0;
            if (UseVector512 && hd % 64 == 0)
            {
                for (; h + 4 <= group; h += 4)
                {
                    AccumulateFourHeads512<TKv>(vc, scores + (long)h * scoreStride + c, scoreStride, count, hd, output + h * hd);
                }
            }

            for (; h < group; h++)
            {
                AccumulateValues<TKv>(vc, scores + (long)h * scoreStride + c, count, hd, output + h * hd);
            }
        }
    }

    // How much of a range's keys and of its values PrefetchStart asks for: beyond it the streams are long enough for
    // the hardware prefetcher.
    private const int PrefetchBytes = 16 * 1024;

    /// <summary>
    /// Asks for the first <see cref="PrefetchBytes"/> of bytes [p, p + length) at once. In batched decode a sequence's
    /// cache was written a step ago and the weights streamed since have evicted it: a range of a few dozen positions is
    /// two short streams, read at the latency of one miss after another while the hardware prefetcher ramps up, unless
    /// their misses are issued together.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchStart(byte* p, long length)
    {
        long end = Math.Min(length, PrefetchBytes);
        for (long i = 0; i < end; i += 64)
        {
            Sse.Prefetch0(p + i);
        }
    }

    /// <summary>
    /// Scores of four heads (q [4, hd], scores rows <paramref name="scoreStride"/> apart) against 4 key blocks:
    /// 16 accumulators, and each widened key vector serves four multiply-adds. Each dimension's step also asks for
    /// its share of the next chunk's keys (<paramref name="nextKeys"/>, null for the last chunk) into L1 and of this
    /// chunk's values into L2, so that one chunk's reads overlap the last one's arithmetic and the value pass finds
    /// its rows in L2. Left to the hardware prefetcher, whose streams stop at each 4 KiB page (a key block), 8 streams of
    /// 1024-token contexts spent 20-21 ms of a 47-50 ms step in attention; 16-18 with these requests.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoreFourHeads512<TKv>(byte* k, float* q, int hd, float* s, int scoreStride, float scale, byte* nextKeys, byte* values) where TKv : struct, IKvElements
    {
        long block = (long)hd * KeyBlock * TKv.Size;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (int d = 0; d < hd; d++)
        {
            PrefetchDimension<TKv>(nextKeys, values, d);
            byte* kd = k + (long)d * KeyBlock * TKv.Size;
            Vector512<float> k0 = TKv.Load512(kd), k1 = TKv.Load512(kd + block), k2 = TKv.Load512(kd + 2 * block), k3 = TKv.Load512(kd + 3 * block);
            Vector512<float> q0 = Vector512.Create(q[d]), q1 = Vector512.Create(q[hd + d]), q2 = Vector512.Create(q[2 * hd + d]), q3 = Vector512.Create(q[3 * hd + d]);
            a00 = Vector512.FusedMultiplyAdd(k0, q0, a00);
            a01 = Vector512.FusedMultiplyAdd(k1, q0, a01);
            a02 = Vector512.FusedMultiplyAdd(k2, q0, a02);
            a03 = Vector512.FusedMultiplyAdd(k3, q0, a03);
            a10 = Vector512.FusedMultiplyAdd(k0, q1, a10);
            a11 = Vector512.FusedMultiplyAdd(k1, q1, a11);
            a12 = Vector512.FusedMultiplyAdd(k2, q1, a12);
            a13 = Vector512.FusedMultiplyAdd(k3, q1, a13);
            a20 = Vector512.FusedMultiplyAdd(k0, q2, a20);
            a21 = Vector512.FusedMultiplyAdd(k1, q2, a21);
            a22 = Vector512.FusedMultiplyAdd(k2, q2, a22);
            a23 = Vector512.FusedMultiplyAdd(k3, q2, a23);
            a30 = Vector512.FusedMultiplyAdd(k0, q3, a30);
            a31 = Vector512.FusedMultiplyAdd(k1, q3, a31);
            a32 = Vector512.FusedMultiplyAdd(k2, q3, a32);
            a33 = Vector512.FusedMultiplyAdd(k3, q3, a33);
        }

        Vector512<float> vs = Vector512.Create(scale);
        StoreRow(s, a00 * vs, a01 * vs, a02 * vs, a03 * vs);
        StoreRow(s + scoreStride, a10 * vs, a11 * vs, a12 * vs, a13 * vs);
        StoreRow(s + 2L * scoreStride, a20 * vs, a21 * vs, a22 * vs, a23 * vs);
        StoreRow(s + 3L * scoreStride, a30 * vs, a31 * vs, a32 * vs, a33 * vs);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* s, Vector512<float> b0, Vector512<float> b1, Vector512<float> b2, Vector512<float> b3)
    {
        b0.Store(s);
        b1.Store(s + 16);
        b2.Store(s + 32);
        b3.Store(s + 48);
    }

    /// <summary>s[16 b + j] = scale * sum_d q[d] K[b][d][j] for key blocks b in [0, blocks), blocks &lt;= 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoreBlocks<TKv>(byte* k, float* q, int hd, int blocks, float* s, float scale) where TKv : struct, IKvElements
    {
        long blockBytes = (long)hd * KeyBlock * TKv.Size, row = KeyBlock * TKv.Size;
        if (UseVector512)
        {
            for (int b = 0; b < blocks; b++, k += blockBytes, s += KeyBlock)
            {
                (WeightedSum512<TKv>(k, row, q, hd, default) * Vector512.Create(scale)).Store(s);
            }

            return;
        }

        if (UseVector256)
        {
            for (int b = 0; b < blocks; b++, k += blockBytes, s += KeyBlock)
            {
                Vector256<float> lo = default, hi = default;
                for (int d = 0; d < hd; d++)
                {
                    Vector256<float> qd = Vector256.Create(q[d]);
                    lo = Vector256.FusedMultiplyAdd(TKv.Load256(k + d * row), qd, lo);
                    hi = Vector256.FusedMultiplyAdd(TKv.Load256(k + d * row + 8 * TKv.Size), qd, hi);
                }

                Vector256<float> vs = Vector256.Create(scale);
                (lo * vs).Store(s);
                (hi * vs).Store(s + 8);
            }

            return;
        }

        for (int b = 0; b < blocks; b++, k += blockBytes, s += KeyBlock)
        {
            for (int j = 0; j < KeyBlock; j++)
            {
                float sum = 0f;
                for (int d = 0; d < hd; d++)
                {
                    sum += q[d] * TKv.Load(k + (d * KeyBlock + j) * TKv.Size);
                }

                s[j] = sum * scale;
            }
        }
    }

    /// <summary>
    /// start + sum_j w[j] x_j over the 16-wide vectors x_j at p + j * stride, in two chains (even and odd j) so the
    /// multiply-adds do not wait on each other.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> WeightedSum512<TKv>(byte* p, long stride, float* w, int count, Vector512<float> start) where TKv : struct, IKvElements
    {
        Vector512<float> even = start, odd = default;
        int j = 0;
        for (; j + 2 <= count; j += 2)
        {
            even = Vector512.FusedMultiplyAdd(TKv.Load512(p + j * stride), Vector512.Create(w[j]), even);
            odd = Vector512.FusedMultiplyAdd(TKv.Load512(p + (j + 1) * stride), Vector512.Create(w[j + 1]), odd);
        }

        if (j < count)
        {
            even = Vector512.FusedMultiplyAdd(TKv.Load512(p + j * stride), Vector512.Create(w[j]), even);
        }

        return even + odd;
    }

    /// <summary>
    /// output[h, hd] += sum_p w[h, p] V[p] for four heads (weights rows <paramref name="weightStride"/> apart),
    /// 64 dimensions at a time: each widened value vector serves four multiply-adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateFourHeads512<TKv>(byte* v, float* w, int weightStride, int count, int hd, float* output) where TKv : struct, IKvElements
    {
        long rowBytes = (long)hd * TKv.Size;
        for (int i = 0; i < hd; i += 64)
        {
            float* o0 = output + i, o1 = o0 + hd, o2 = o1 + hd, o3 = o2 + hd;
            Vector512<float> a00 = Vector512.Load(o0), a01 = Vector512.Load(o0 + 16), a02 = Vector512.Load(o0 + 32), a03 = Vector512.Load(o0 + 48);
            Vector512<float> a10 = Vector512.Load(o1), a11 = Vector512.Load(o1 + 16), a12 = Vector512.Load(o1 + 32), a13 = Vector512.Load(o1 + 48);
            Vector512<float> a20 = Vector512.Load(o2), a21 = Vector512.Load(o2 + 16), a22 = Vector512.Load(o2 + 32), a23 = Vector512.Load(o2 + 48);
            Vector512<float> a30 = Vector512.Load(o3), a31 = Vector512.Load(o3 + 16), a32 = Vector512.Load(o3 + 32), a33 = Vector512.Load(o3 + 48);
            byte* vi = v + (long)i * TKv.Size;
            for (int p = 0; p < count; p++)
            {
                byte* vp = vi + p * rowBytes;
                Vector512<float> v0 = TKv.Load512(vp), v1 = TKv.Load512(vp + 16 * TKv.Size), v2 = TKv.Load512(vp + 32 * TKv.Size), v3 = TKv.Load512(vp + 48 * TKv.Size);
                Vector512<float> w0 = Vector512.Create(w[p]), w1 = Vector512.Create(w[weightStride + p]);
                Vector512<float> w2 = Vector512.Create(w[2L * weightStride + p]), w3 = Vector512.Create(w[3L * weightStride + p]);
                a00 = Vector512.FusedMultiplyAdd(v0, w0, a00);
                a01 = Vector512.FusedMultiplyAdd(v1, w0, a01);
                a02 = Vector512.FusedMultiplyAdd(v2, w0, a02);
                a03 = Vector512.FusedMultiplyAdd(v3, w0, a03);
                a10 = Vector512.FusedMultiplyAdd(v0, w1, a10);
                a11 = Vector512.FusedMultiplyAdd(v1, w1, a11);
                a12 = Vector512.FusedMultiplyAdd(v2, w1, a12);
                a13 = Vector512.FusedMultiplyAdd(v3, w1, a13);
                a20 = Vector512.FusedMultiplyAdd(v0, w2, a20);
                a21 = Vector512.FusedMultiplyAdd(v1, w2, a21);
                a22 = Vector512.FusedMultiplyAdd(v2, w2, a22);
                a23 = Vector512.FusedMultiplyAdd(v3, w2, a23);
                a30 = Vector512.FusedMultiplyAdd(v0, w3, a30);
                a31 = Vector512.FusedMultiplyAdd(v1, w3, a31);
                a32 = Vector512.FusedMultiplyAdd(v2, w3, a32);
                a33 = Vector512.FusedMultiplyAdd(v3, w3, a33);
            }

            StoreRow(o0, a00, a01, a02, a03);
            StoreRow(o1, a10, a11, a12, a13);
            StoreRow(o2, a20, a21, a22, a23);
            StoreRow(o3, a30, a31, a32, a33);
        }
    }

    /// <summary>output[hd] += sum_p w[p] V[p] for p in [0, count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateValues<TKv>(byte* v, float* w, int count, int hd, float* output) where TKv : struct, IKvElements
    {
        long rowBytes = (long)hd * TKv.Size;
        int i = 0;
        if (UseVector512)
        {
            for (; i + 16 <= hd; i += 16)
            {
                WeightedSum512<TKv>(v + (long)i * TKv.Size, rowBytes, w, count, Vector512.Load(output + i)).Store(output + i);
            }
        }
        else if (UseVector256)
        {
            for (; i + 8 <= hd; i += 8)
            {
                Vector256<float> acc = Vector256.Load(output + i);
                byte* vi = v + (long)i * TKv.Size;
                for (int p = 0; p < count; p++)
                {
                    acc = Vector256.FusedMultiplyAdd(TKv.Load256(vi + p * rowBytes), Vector256.Create(w[p]), acc);
                }

                acc.Store(output + i);
            }
        }

        for (; i < hd; i++)
        {
            float acc = output[i];
            for (int p = 0; p < count; p++)
            {
                acc += w[p] * TKv.Load(v + (p * (long)hd + i) * TKv.Size);
            }

            output[i] = acc;
        }
    }

    /// <summary>How a cache element becomes a float; the kernels are compiled once per storage.</summary>
    private interface IKvElements
    {
        static abstract int Size { get; }

        static abstract Vector512<float> Load512(byte* p);

        static abstract Vector256<float> Load256(byte* p);

        static abstract float Load(byte* p);
    }

    private readonly struct F32Elements : IKvElements
    {
        public static int Size => sizeof(float);

        public static Vector512<float> Load512(byte* p) => Vector512.Load((float*)p);

        public static Vector256<float> Load256(byte* p) => Vector256.Load((float*)p);

        public static float Load(byte* p) => *(float*)p;
    }

    /// <summary>BF16 is the top half of a float: widen to 32 bits and shift left by 16.</summary>
    private readonly struct Bf16Elements : IKvElements
    {
        public static int Size => sizeof(ushort);

        public static Vector512<float> Load512(byte* p) => Avx512F.IsSupported
            ? (Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)p)) << 16).AsSingle()
            : (Vector512.WidenLower(Vector256.Load((ushort*)p).ToVector512Unsafe()) << 16).AsSingle();

        public static Vector256<float> Load256(byte* p) => Avx2.IsSupported
            ? (Avx2.ConvertToVector256Int32(Vector128.Load((ushort*)p)) << 16).AsSingle()
            : (Vector256.WidenLower(Vector128.Load((ushort*)p).ToVector256Unsafe()) << 16).AsSingle();

        public static float Load(byte* p) => BitConverter.UInt32BitsToSingle((uint)*(ushort*)p << 16);
    }
}
