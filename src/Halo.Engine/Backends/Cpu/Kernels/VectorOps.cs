using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Halo.Core.Models;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// The small per-token ops of the forward pass: RMSNorm, RoPE NEOX, the gated activations, softmax, dot
/// products. Each follows ggml's CPU arithmetic (float products, double sums where ggml uses them) so that
/// <see cref="NumericsMode.LlamaCpp"/> stays within rounding of llama.cpp.
/// </summary>
public static unsafe class VectorOps
{
    /// <summary>y = x / sqrt(mean(x^2) + eps) * weight, for one row of n; y may alias x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RmsNorm(float* x, float* weight, float* y, int n, float eps)
    {
        double sum = 0;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<double> acc0 = default, acc1 = default;
            for (; i + 8 <= n; i += 8)
            {
                Vector256<float> v = Vector256.Load(x + i);
                Vector256<float> sq = v * v;
                (Vector256<double> lo, Vector256<double> hi) = Vector256.Widen(sq);
                acc0 += lo;
                acc1 += hi;
            }

            sum = Vector256.Sum(acc0 + acc1);
        }

        for (; i < n; i++)
        {
            sum += x[i] * x[i];
        }

        float mean = (float)(sum / n);
        float scale = 1f / MathF.Sqrt(mean + eps);
        i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> s = Vector256.Create(scale);
            for (; i + 8 <= n; i += 8)
            {
                (Vector256.Load(x + i) * s * Vector256.Load(weight + i)).Store(y + i);
            }
        }

        for (; i < n; i++)
        {
            y[i] = x[i] * scale * weight[i];
        }
    }

    /// <summary>
    /// The RoPE NEOX rotation table for one position: cos/sin of pos * base^(-2i/headDim) for i < headDim/2,
    /// with the frequency built by repeated multiplication in float exactly as ggml builds its cache.
    /// </summary>
    public static void RopeTable(int position, float theta, int headDim, float* cos, float* sin)
    {
        float thetaScale = MathF.Pow(theta, -2f / headDim);
        float angle = position;
        for (int i = 0; i < headDim / 2; i++)
        {
            cos[i] = MathF.Cos(angle);
            sin[i] = MathF.Sin(angle);
            angle *= thetaScale;
        }
    }

    /// <summary>
    /// Rotates each head of x [heads, headDim] in place: pairs (i, i + headDim/2), eight pairs a vector step (the
    /// same multiplies and subtractions as one pair at a time, so the same bits).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RopeNeox(float* x, int heads, int headDim, float* cos, float* sin)
    {
        int half = headDim / 2;
        for (int h = 0; h < heads; h++)
        {
            float* v = x + h * headDim;
            int i = 0;
            for (; i + Vector256<float>.Count <= half; i += Vector256<float>.Count)
            {
                Vector256<float> x0 = Vector256.Load(v + i), x1 = Vector256.Load(v + i + half);
                Vector256<float> c = Vector256.Load(cos + i), s = Vector256.Load(sin + i);
                Vector256.Store((x0 * c) - (x1 * s), v + i);
                Vector256.Store((x0 * s) + (x1 * c), v + i + half);
            }

            for (; i < half; i++)
            {
                float x0 = v[i], x1 = v[i + half];
                v[i] = x0 * cos[i] - x1 * sin[i];
                v[i + half] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }

    /// <summary>gate = act(gate) * up over n elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GatedActivation(float* gate, float* up, int n, Activation activation)
    {
        int i = 0;
        if (activation == Activation.Silu)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i + 16 <= n; i += 16)
                {
                    Vector512<float> g = Vector512.Load(gate + i);
                    Vector512<float> silu = g / (Vector512<float>.One + Vector512.Exp(-g));
                    (silu * Vector512.Load(up + i)).Store(gate + i);
                }
            }

            for (; i < n; i++)
            {
                float g = gate[i];
                gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
            }
        }
        else
        {
            // relu(g)^2 * u, in the scalar loop's order, so the same bits.
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i + 16 <= n; i += 16)
                {
                    Vector512<float> r = Vector512.Max(Vector512.Load(gate + i), Vector512<float>.Zero);
                    (r * r * Vector512.Load(up + i)).Store(gate + i);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                for (; i + 8 <= n; i += 8)
                {
                    Vector256<float> r = Vector256.Max(Vector256.Load(gate + i), Vector256<float>.Zero);
                    (r * r * Vector256.Load(up + i)).Store(gate + i);
                }
            }

            for (; i < n; i++)
            {
                float r = MathF.Max(gate[i], 0f);
                gate[i] = r * r * up[i];
            }
        }
    }

    /// <summary>x[i] = exp(x[i] - max x) in place; returns the sum of the new x, and the max in <paramref name="max"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double Exponentiate(float* x, int n, out float max)
    {
        max = Max(x, n);

        // The sum runs in double: thousands of terms near 1 would lose the small ones in float.
        double sum = 0;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> shift = Vector512.Create(max);
            Vector512<double> acc = default;
            for (; i + 16 <= n; i += 16)
            {
                Vector512<float> e = Vector512.Exp(Vector512.Load(x + i) - shift);
                e.Store(x + i);
                (Vector512<double> lo, Vector512<double> hi) = Vector512.Widen(e);
                acc += lo + hi;
            }

            sum = Vector512.Sum(acc);
        }

        for (; i < n; i++)
        {
            float e = MathF.Exp(x[i] - max);
            x[i] = e;
            sum += e;
        }

        return sum;
    }

    /// <summary>The largest x[i] (negative infinity for none), 16 or 8 at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Max(float* x, int n)
    {
        float max = float.NegativeInfinity;
        int i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            Vector512<float> m = Vector512.Create(float.NegativeInfinity);
            for (; i + 16 <= n; i += 16)
            {
                m = Vector512.Max(m, Vector512.Load(x + i));
            }

            max = MaxLane(Vector256.Max(m.GetLower(), m.GetUpper()));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> m = Vector256.Create(float.NegativeInfinity);
            for (; i + 8 <= n; i += 8)
            {
                m = Vector256.Max(m, Vector256.Load(x + i));
            }

            max = MaxLane(m);
        }

        for (; i < n; i++)
        {
            max = MathF.Max(max, x[i]);
        }

        return max;
    }

    /// <summary>x[i] *= s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scale(float* x, int n, float s)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> vs = Vector256.Create(s);
            for (; i + 8 <= n; i += 8)
            {
                (Vector256.Load(x + i) * vs).Store(x + i);
            }
        }

        for (; i < n; i++)
        {
            x[i] *= s;
        }
    }

    private static float MaxLane(Vector256<float> m)
    {
        Vector128<float> m4 = Vector128.Max(m.GetLower(), m.GetUpper());
        return MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            Vector512<float> acc = default;
            for (; i + 16 <= n; i += 16)
            {
                acc += Vector512.Load(a + i) * Vector512.Load(b + i);
            }

            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> acc = default;
            for (; i + 8 <= n; i += 8)
            {
                acc += Vector256.Load(a + i) * Vector256.Load(b + i);
            }

            sum = Vector256.Sum(acc);
        }

        for (; i < n; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add(float* x, float* y, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= n; i += 8)
            {
                (Vector256.Load(x + i) + Vector256.Load(y + i)).Store(x + i);
            }
        }

        for (; i < n; i++)
        {
            x[i] += y[i];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RoundToHalf(float* x, int n)
    {
        for (int i = 0; i < n; i++)
        {
            x[i] = HalfBits.RoundToHalf(x[i]);
        }
    }
}
