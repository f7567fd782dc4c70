using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

using Halo.Engine.Backends;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// Int8 activations of a batch of tokens: q [tokens, cols], a scale d per 256-block (x ~ q * d; with per-token
/// scaling all blocks of a token share it) and the sum of q per block, which the ternary kernels use to turn
/// the unsigned weight codes (w + 1) back into w. Within each block q is stored in the kernels' order
/// (<see cref="TernaryMatrix.KernelOrder"/>): runs of 32 columns moved so that each 2-bit field of a weight
/// block meets its 64 activations in one load.
/// </summary>
public sealed unsafe class QuantizedActivations : IDisposable
{
    public QuantizedActivations(int maxTokens, int maxCols)
    {
        MaxTokens = maxTokens;
        MaxCols = maxCols;
        Q = (sbyte*)NativeMemory.AlignedAlloc((nuint)maxTokens * (nuint)maxCols, 64);
        D = (float*)NativeMemory.AlignedAlloc((nuint)maxTokens * (nuint)(maxCols / 256) * sizeof(float), 64);
        Sum = (int*)NativeMemory.AlignedAlloc((nuint)maxTokens * (nuint)(maxCols / 256) * sizeof(int), 64);
        TokenSum = (int*)NativeMemory.AlignedAlloc((nuint)maxTokens * sizeof(int), 64);
    }

    public int MaxTokens { get; }

    public int MaxCols { get; }

    public int Tokens { get; private set; }

    public int Cols { get; private set; }

    public int Blocks => Cols / 256;

    /// <summary>How the last <see cref="Quantize"/> scaled: per token means every block of a token has the same D.</summary>
    public ActivationScaling Scaling { get; private set; }

    public sbyte* Q { get; private set; }

    public float* D { get; private set; }

    public int* Sum { get; private set; }

    /// <summary>The sum of q over all of a token's columns (the row-scaled kernels' correction).</summary>
    public int* TokenSum { get; private set; }

    /// <summary>q of column <paramref name="col"/> of token <paramref name="token"/>, in natural order.</summary>
    public sbyte At(int token, int col) => Q[(long)token * Cols + col / 256 * 256 + TernaryMatrix.KernelOrder(col % 256)];

    /// <summary>Quantizes x [tokens, cols] (cols a multiple of 256).</summary>
    public void Quantize(float* x, int tokens, int cols, ActivationScaling scaling)
    {
        Prepare(tokens, cols, scaling);
        for (int t = 0; t < tokens; t++)
        {
            QuantizeToken(x + (long)t * cols, t);
        }
    }

    /// <summary>Sets the shape of the next batch; then <see cref="QuantizeToken"/> fills it, tokens in any order or in parallel.</summary>
    public void Prepare(int tokens, int cols, ActivationScaling scaling)
    {
        if (tokens > MaxTokens || cols > MaxCols || cols % 256 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(tokens), "batch larger than the quantization buffer");
        }

        Tokens = tokens;
        Cols = cols;
        Scaling = scaling;
    }

    /// <summary>Quantizes row [cols] of token t of the batch set by <see cref="Prepare"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QuantizeToken(float* row, int t)
    {
        int blocks = Cols / 256;
        sbyte* q = Q + (long)t * Cols;
        if (Scaling == ActivationScaling.PerBlock)
        {
            for (int b = 0; b < blocks; b++)
            {
                QuantizeBlockQ8K(row + b * 256, q + b * 256, out D[t * blocks + b], out Sum[t * blocks + b]);
            }
        }
        else
        {
            QuantizePerToken(row, q, Cols, D + t * blocks, Sum + t * blocks);
        }

        int total = 0;
        for (int b = 0; b < blocks; b++)
        {
            total += Sum[t * blocks + b];
        }

        TokenSum[t] = total;
    }

    private static void QuantizeBlockQ8K(float* x, sbyte* q, out float d, out int sum)
    {
        float amax = AbsMax(x, 256), max = 0f;
        for (int j = 0; j < 256; j++)
        {
            // The first element of largest magnitude gives the sign of the scale, as in ggml.
            if (MathF.Abs(x[j]) == amax)
            {
                max = x[j];
                break;
            }
        }

        sum = 0;
        if (amax == 0f)
        {
            d = 0f;
            new Span<sbyte>(q, 256).Clear();
            return;
        }

        // |iscale * x| <= 127 here, so rounding to nearest even and saturating equals ggml's MIN(127, nearest_int).
        float iscale = -127f / max;
        sum = QuantizeBlock(x, q, iscale);
        d = 1f / iscale;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float AbsMax(float* x, int n)
    {
        int j = 0;
        float amax = 0f;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> m = default;
            for (; j + 16 <= n; j += 16)
            {
                m = Vector512.Max(m, Vector512.Abs(Vector512.Load(x + j)));
            }

            for (int k = 0; k < 16; k++)
            {
                amax = MathF.Max(amax, m.GetElement(k));
            }
        }

        for (; j < n; j++)
        {
            amax = MathF.Max(amax, MathF.Abs(x[j]));
        }

        return amax;
    }

    /// <summary>
    /// One 256-block: q = clamp(round_half_even(x * scale), -128, 127), each run of 32 columns to its kernel position
    /// (<see cref="RunTarget"/>); returns the block's sum of q. The AVX-512 path sums in a vector and reduces once per
    /// block: a horizontal sum per run was most of the quantization's time (1.32 us per 2560 columns).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int QuantizeBlock(float* x, sbyte* q, float scale)
    {
        if (Avx512F.IsSupported)
        {
            Vector512<float> s = Vector512.Create(scale);
            Vector512<int> low = Vector512.Create(-128), high = Vector512.Create(127), sums = default;
            for (int run = 0; run < 8; run++)
            {
                float* src = x + run * 32;
                sbyte* dst = q + RunTarget(run);
                Vector512<int> v0 = Vector512.Min(Vector512.Max(Avx512F.ConvertToVector512Int32(Vector512.Load(src) * s), low), high);
                Vector512<int> v1 = Vector512.Min(Vector512.Max(Avx512F.ConvertToVector512Int32(Vector512.Load(src + 16) * s), low), high);
                Avx512F.ConvertToVector128SByte(v0).Store(dst);
                Avx512F.ConvertToVector128SByte(v1).Store(dst + 16);
                sums += v0 + v1;
            }

            return Vector512.Sum(sums);
        }

        int sum = 0;
        for (int run = 0; run < 8; run++)
        {
            float* src = x + run * 32;
            sbyte* dst = q + RunTarget(run);
            for (int j = 0; j < 32; j++)
            {
                int v = (int)Math.Clamp(MathF.Round(src[j] * scale), -128f, 127f);
                dst[j] = (sbyte)v;
                sum += v;
            }
        }

        return sum;
    }

    // Columns run*32 .. run*32+31 of a block go to kernel positions RunTarget(run) .. +31.
    private static int RunTarget(int run) => TernaryMatrix.KernelOrder(run * 32);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizePerToken(float* x, sbyte* q, int cols, float* d, int* sums)
    {
        float amax = AbsMax(x, cols);
        float scale = 127f / MathF.Max(amax, 1e-5f);
        float dq = 1f / scale;
        for (int b = 0; b < cols / 256; b++)
        {
            d[b] = dq;
            sums[b] = QuantizeBlock(x + b * 256, q + b * 256, scale);
        }
    }

    public void Dispose()
    {
        if (Q != null)
        {
            NativeMemory.AlignedFree(Q);
            NativeMemory.AlignedFree(D);
            NativeMemory.AlignedFree(Sum);
            NativeMemory.AlignedFree(TokenSum);
            Q = null;
            D = null;
            Sum = null;
            TokenSum = null;
        }
    }
}
