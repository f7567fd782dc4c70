using System.Buffers.Binary;

namespace Halo.Core.Formats;

/// <summary>
/// ggml's TQ2_0 block: 256 ternary weights in 66 bytes, <c>qs[64]</c> (2 bits each, code = w + 1) then an
/// F16 scale <c>d</c>. Within the block, elements are in two halves of 128; in half <c>h</c>, element
/// <c>h*128 + n*32 + m</c> lives in byte <c>h*32 + m</c>, bits <c>2n..2n+1</c> (n = 0..3, m = 0..31).
/// </summary>
public static class Tq2_0
{
    public const int BlockSize = 256;
    public const int BlockBytes = 66;
    public const int ScaleOffset = 64;

    /// <summary>The byte and bit shift of element <paramref name="e"/> (0..255) of a block.</summary>
    public static (int Byte, int Shift) Locate(int e) => ((e / 128 * 32) + (e % 32), e % 128 / 32 * 2);

    /// <summary>quantize_row_tq2_0_ref: per block d = max|x|, w = round(x / d).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blocks = CheckLengths(src.Length, dst.Length);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            Span<byte> y = dst.Slice(b * BlockBytes, BlockBytes);
            float amax = 0;
            foreach (float v in x)
            {
                amax = MathF.Max(amax, MathF.Abs(v));
            }

            float id = amax != 0 ? 1.0f / amax : 0.0f;
            BinaryPrimitives.WriteUInt16LittleEndian(y[ScaleOffset..], Fp16.FromFloat(amax));
            for (int half = 0; half < 2; half++)
            {
                for (int m = 0; m < 32; m++)
                {
                    int q = 0;
                    for (int n = 0; n < 4; n++)
                    {
                        int xi = (int)MathF.Round(x[(half * 128) + (n * 32) + m] * id, MidpointRounding.AwayFromZero) + 1;
                        q += (xi & 3) << (2 * n);
                    }

                    y[(half * 32) + m] = (byte)q;
                }
            }
        }
    }

    /// <summary>Packs ternary weights (-1, 0, +1) with one scale per block; the fast path of synthetic models and converters.</summary>
    public static void EncodeTernary(ReadOnlySpan<sbyte> weights, ReadOnlySpan<float> blockScales, Span<byte> dst)
    {
        int blocks = CheckLengths(weights.Length, dst.Length);
        if (blockScales.Length < blocks)
        {
            throw new ArgumentException("one scale per block is needed", nameof(blockScales));
        }

        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<sbyte> w = weights.Slice(b * BlockSize, BlockSize);
            Span<byte> y = dst.Slice(b * BlockBytes, BlockBytes);
            for (int half = 0; half < 2; half++)
            {
                for (int m = 0; m < 32; m++)
                {
                    int baseIndex = (half * 128) + m;
                    y[(half * 32) + m] = (byte)((w[baseIndex] + 1)
                        | ((w[baseIndex + 32] + 1) << 2)
                        | ((w[baseIndex + 64] + 1) << 4)
                        | ((w[baseIndex + 96] + 1) << 6));
                }
            }

            BinaryPrimitives.WriteUInt16LittleEndian(y[ScaleOffset..], Fp16.FromFloat(blockScales[b]));
        }
    }

    /// <summary>Unpacks the ternary codes (-1, 0, +1) and returns nothing of the scales; see <see cref="BlockScale"/>.</summary>
    public static void DecodeTernary(ReadOnlySpan<byte> src, Span<sbyte> weights)
    {
        int blocks = CheckLengths(weights.Length, src.Length);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<byte> y = src.Slice(b * BlockBytes, BlockBytes);
            Span<sbyte> w = weights.Slice(b * BlockSize, BlockSize);
            for (int half = 0; half < 2; half++)
            {
                for (int n = 0; n < 4; n++)
                {
                    for (int m = 0; m < 32; m++)
                    {
                        w[(half * 128) + (n * 32) + m] = (sbyte)(((y[(half * 32) + m] >> (2 * n)) & 3) - 1);
                    }
                }
            }
        }
    }

    public static float BlockScale(ReadOnlySpan<byte> block) =>
        Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block[ScaleOffset..]));

    /// <summary>dequantize_row_tq2_0: x = (code - 1) * d.</summary>
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blocks = CheckLengths(dst.Length, src.Length);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<byte> y = src.Slice(b * BlockBytes, BlockBytes);
            float d = BlockScale(y);
            Span<float> x = dst.Slice(b * BlockSize, BlockSize);
            for (int half = 0; half < 2; half++)
            {
                for (int n = 0; n < 4; n++)
                {
                    for (int m = 0; m < 32; m++)
                    {
                        x[(half * 128) + (n * 32) + m] = (((y[(half * 32) + m] >> (2 * n)) & 3) - 1) * d;
                    }
                }
            }
        }
    }

    private static int CheckLengths(int elements, int bytes) =>
        GgmlTypeInfo.CheckBlockLengths("TQ2_0", BlockSize, BlockBytes, elements, bytes);
}
