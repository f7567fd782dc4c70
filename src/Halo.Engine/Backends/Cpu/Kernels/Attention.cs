using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// Attention of one token for the query heads that share one KV head (a GQA group): for each head h,
/// out[h] = softmax(q[h] K^T / sqrt(head_dim)) V over positions [0, n) of the token's slot, with K and V in the
/// layout of <see cref="KvCache"/>. Scores come 16 positions at a time from the transposed key blocks (one
/// multiply-add per dimension, no horizontal sums). Positions go in chunks of <see cref="Chunk"/>, and within a
/// chunk head by head, so the chunk's keys (then values) come from memory once and from L1 for the other heads.
/// Paths: Vector512, Vector256, scalar.
/// </summary>
public static unsafe class Attention
{
    private const int KeyBlock = KvCache.KeyBlock;
    private const int Chunk = 4 * KeyBlock;

    public static bool UseVector512 { get; set; } = Vector512.IsHardwareAccelerated;

    public static bool UseVector256 { get; set; } = Vector256.IsHardwareAccelerated;

    /// <summary>
    /// q and output [group, hd]; scores [group, scoreStride] scratch with scoreStride at least n rounded up to 16.
    /// In llama.cpp numerics q and the probabilities are rounded to F16, as ggml multiplies them with its F16 cache.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Group(float* q, float* keys, float* values, int n, int group, int hd, float* scores, int scoreStride, float* output, bool llamaCppNumerics)
    {
        if (llamaCppNumerics)
        {
            VectorOps.RoundToHalf(q, group * hd);
        }

        float scale = 1f / MathF.Sqrt(hd);
        for (int p0 = 0; p0 < n; p0 += Chunk)
        {
            int blocks = (Math.Min(Chunk, n - p0) + KeyBlock - 1) / KeyBlock;
            for (int h = 0; h < group; h++)
            {
                ScoreBlocks(keys + (long)p0 * hd, q + h * hd, hd, blocks, scores + (long)h * scoreStride + p0, scale);
            }
        }

        for (int h = 0; h < group; h++)
        {
            float* probabilities = scores + (long)h * scoreStride;
            VectorOps.Softmax(probabilities, n);
            if (llamaCppNumerics)
            {
                VectorOps.RoundToHalf(probabilities, n);
            }

            new Span<float>(output + h * hd, hd).Clear();
        }

        for (int p0 = 0; p0 < n; p0 += Chunk)
        {
            int count = Math.Min(Chunk, n - p0);
            for (int h = 0; h < group; h++)
            {
                AccumulateValues(values + (long)p0 * hd, scores + (long)h * scoreStride + p0, count, hd, output + h * hd);
            }
        }
    }

    /// <summary>s[16 b + j] = scale * sum_d q[d] K[b][d][j] for key blocks b in [0, blocks), blocks &lt;= 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoreBlocks(float* k, float* q, int hd, int blocks, float* s, float scale)
    {
        int blockFloats = hd * KeyBlock;
        if (UseVector512)
        {
            if (blocks == 4)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int d = 0; d < hd; d++)
                {
                    Vector512<float> qd = Vector512.Create(q[d]);
                    float* kd = k + d * KeyBlock;
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(kd), qd, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(kd + blockFloats), qd, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(kd + 2 * blockFloats), qd, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(kd + 3 * blockFloats), qd, a3);
                }

                Vector512<float> vs = Vector512.Create(scale);
                (a0 * vs).Store(s);
                (a1 * vs).Store(s + 16);
                (a2 * vs).Store(s + 32);
                (a3 * vs).Store(s + 48);
                return;
            }

            for (int b = 0; b < blocks; b++, k += blockFloats, s += KeyBlock)
            {
                // Even and odd dimensions in two chains, so the multiply-adds do not wait on each other.
                Vector512<float> even = default, odd = default;
                for (int d = 0; d < hd; d += 2)
                {
                    even = Vector512.FusedMultiplyAdd(Vector512.Load(k + d * KeyBlock), Vector512.Create(q[d]), even);
                    odd = Vector512.FusedMultiplyAdd(Vector512.Load(k + (d + 1) * KeyBlock), Vector512.Create(q[d + 1]), odd);
                }

                ((even + odd) * Vector512.Create(scale)).Store(s);
            }

            return;
        }

        if (UseVector256)
        {
            for (int b = 0; b < blocks; b++, k += blockFloats, s += KeyBlock)
            {
                Vector256<float> lo = default, hi = default;
                for (int d = 0; d < hd; d++)
                {
                    Vector256<float> qd = Vector256.Create(q[d]);
                    lo = Vector256.FusedMultiplyAdd(Vector256.Load(k + d * KeyBlock), qd, lo);
                    hi = Vector256.FusedMultiplyAdd(Vector256.Load(k + d * KeyBlock + 8), qd, hi);
                }

                Vector256<float> vs = Vector256.Create(scale);
                (lo * vs).Store(s);
                (hi * vs).Store(s + 8);
            }

            return;
        }

        for (int b = 0; b < blocks; b++, k += blockFloats, s += KeyBlock)
        {
            for (int j = 0; j < KeyBlock; j++)
            {
                float sum = 0f;
                for (int d = 0; d < hd; d++)
                {
                    sum += q[d] * k[d * KeyBlock + j];
                }

                s[j] = sum * scale;
            }
        }
    }

    /// <summary>output[hd] += sum_p w[p] V[p] for p in [0, count).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateValues(float* v, float* w, int count, int hd, float* output)
    {
        int i = 0;
        if (UseVector512)
        {
            for (; i + 64 <= hd; i += 64)
            {
                AccumulateSlice64(v + i, w, count, hd, output + i);
            }

            for (; i + 16 <= hd; i += 16)
            {
                Vector512<float> acc = Vector512.Load(output + i);
                for (int p = 0; p < count; p++)
                {
                    acc = Vector512.FusedMultiplyAdd(Vector512.Load(v + (long)p * hd + i), Vector512.Create(w[p]), acc);
                }

                acc.Store(output + i);
            }
        }
        else if (UseVector256)
        {
            for (; i + 8 <= hd; i += 8)
            {
                Vector256<float> acc = Vector256.Load(output + i);
                for (int p = 0; p < count; p++)
                {
                    acc = Vector256.FusedMultiplyAdd(Vector256.Load(v + (long)p * hd + i), Vector256.Create(w[p]), acc);
                }

                acc.Store(output + i);
            }
        }

        for (; i < hd; i++)
        {
            float acc = output[i];
            for (int p = 0; p < count; p++)
            {
                acc += w[p] * v[(long)p * hd + i];
            }

            output[i] = acc;
        }
    }

    // 64 dimensions in 4 registers, even and odd positions in two sets: 8 independent multiply-add chains.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateSlice64(float* v, float* w, int count, int hd, float* output)
    {
        Vector512<float> a0 = Vector512.Load(output), a1 = Vector512.Load(output + 16), a2 = Vector512.Load(output + 32), a3 = Vector512.Load(output + 48);
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        int p = 0;
        for (; p + 2 <= count; p += 2)
        {
            float* even = v + (long)p * hd, odd = even + hd;
            Vector512<float> we = Vector512.Create(w[p]), wo = Vector512.Create(w[p + 1]);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(even), we, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(even + 16), we, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(even + 32), we, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(even + 48), we, a3);
            b0 = Vector512.FusedMultiplyAdd(Vector512.Load(odd), wo, b0);
            b1 = Vector512.FusedMultiplyAdd(Vector512.Load(odd + 16), wo, b1);
            b2 = Vector512.FusedMultiplyAdd(Vector512.Load(odd + 32), wo, b2);
            b3 = Vector512.FusedMultiplyAdd(Vector512.Load(odd + 48), wo, b3);
        }

        if (p < count)
        {
            float* last = v + (long)p * hd;
            Vector512<float> wl = Vector512.Create(w[p]);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(last), wl, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(last + 16), wl, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(last + 32), wl, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(last + 48), wl, a3);
        }

        (a0 + b0).Store(output);
        (a1 + b1).Store(output + 16);
        (a2 + b2).Store(output + 32);
        (a3 + b3).Store(output + 48);
    }
}
