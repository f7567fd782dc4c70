namespace Halo.Core.Formats;

/// <summary>
/// The packed ternary layout of Microsoft's BitNet b1.58 deploy checkpoints (DESIGN.md section 3): uint8
/// <c>[out/4, in]</c>, where packed row <c>r</c> holds ternary rows <c>r + i*out/4</c> (i = 0..3) in bits
/// <c>2i..2i+1</c>, value = code - 1. And the per-tensor ternarization of bf16 master weights:
/// <c>s = mean|W|</c>, <c>W_q = clamp(round(W / s), -1, 1)</c>.
/// </summary>
public static class BitNetPacking
{
    /// <summary>Unpacks <paramref name="packed"/> [out/4, in] into ternary rows [out, in] (row-major).</summary>
    public static void Unpack(ReadOnlySpan<byte> packed, int outFeatures, int inFeatures, Span<sbyte> weights)
    {
        CheckShape(packed.Length, outFeatures, inFeatures, weights.Length);
        int quarter = outFeatures / 4;
        for (int r = 0; r < quarter; r++)
        {
            ReadOnlySpan<byte> row = packed.Slice(r * inFeatures, inFeatures);
            for (int i = 0; i < 4; i++)
            {
                Span<sbyte> dst = weights.Slice(((i * quarter) + r) * inFeatures, inFeatures);
                int shift = 2 * i;
                for (int c = 0; c < inFeatures; c++)
                {
                    dst[c] = (sbyte)(((row[c] >> shift) & 3) - 1);
                }
            }
        }
    }

    /// <summary>Packs ternary rows [out, in] into [out/4, in].</summary>
    public static void Pack(ReadOnlySpan<sbyte> weights, int outFeatures, int inFeatures, Span<byte> packed)
    {
        CheckShape(packed.Length, outFeatures, inFeatures, weights.Length);
        int quarter = outFeatures / 4;
        packed.Clear();
        for (int i = 0; i < 4; i++)
        {
            for (int r = 0; r < quarter; r++)
            {
                ReadOnlySpan<sbyte> src = weights.Slice(((i * quarter) + r) * inFeatures, inFeatures);
                Span<byte> row = packed.Slice(r * inFeatures, inFeatures);
                for (int c = 0; c < inFeatures; c++)
                {
                    row[c] |= (byte)((src[c] + 1) << (2 * i));
                }
            }
        }
    }

    /// <summary>
    /// Ternarizes master weights per tensor: returns s = mean|W| and writes W_q = clamp(round(W / s), -1, 1)
    /// (round half to even, as PyTorch rounds).
    /// </summary>
    public static float Ternarize(ReadOnlySpan<float> weights, Span<sbyte> ternary)
    {
        double sum = 0;
        foreach (float w in weights)
        {
            sum += Math.Abs(w);
        }

        // BitNet clamps the mean at 1e-5 so that an all-zero tensor does not divide by zero.
        float s = (float)Math.Max(sum / weights.Length, 1e-5);
        float inverse = 1f / s;
        for (int i = 0; i < weights.Length; i++)
        {
            ternary[i] = (sbyte)Math.Clamp(MathF.Round(weights[i] * inverse), -1f, 1f);
        }

        return s;
    }

    private static void CheckShape(int packedBytes, int outFeatures, int inFeatures, int weights)
    {
        if (outFeatures % 4 != 0 || (long)outFeatures * inFeatures != weights || (long)outFeatures / 4 * inFeatures != packedBytes)
        {
            throw new ArgumentException($"packed ternary [{outFeatures}/4, {inFeatures}] does not match {packedBytes} packed bytes and {weights} weights");
        }
    }
}
