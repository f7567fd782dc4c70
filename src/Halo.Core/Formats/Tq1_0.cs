using System.Buffers.Binary;

namespace Halo.Core.Formats;

/// <summary>
/// ggml's TQ1_0 block: 256 ternary weights in 54 bytes: <c>qs[48]</c>, <c>qh[4]</c>, F16 <c>d</c>.
/// Codes c = w + 1 in {0,1,2} are packed base 3, five per byte (3^5 = 243), first element in the most
/// significant trit, and the byte holds ceil(value * 256 / 243) so that a trit is read back as
/// <c>((byte * 3^n mod 256) * 3) >> 8</c>.
/// Elements 0..159: byte m (0..31) holds elements m + 32n (n = 0..4);
/// elements 160..239: byte 32 + m (m = 0..15) holds 160 + m + 16n;
/// elements 240..255: qh[j] (j = 0..3) holds 240 + j + 4n (n = 0..3) in its four upper trits.
/// </summary>
public static class Tq1_0
{
    public const int BlockSize = 256;
    public const int BlockBytes = 54;
    public const int QhOffset = 48;
    public const int ScaleOffset = 52;

    private static ReadOnlySpan<byte> Pow3 => [1, 3, 9, 27, 81, 243];

    /// <summary>quantize_row_tq1_0_ref: per block d = max|x|, w = round(x / d).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blocks = CheckLengths(src.Length, dst.Length);
        Span<sbyte> w = stackalloc sbyte[BlockSize];
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<float> x = src.Slice(b * BlockSize, BlockSize);
            float amax = 0;
            foreach (float v in x)
            {
                amax = MathF.Max(amax, MathF.Abs(v));
            }

            float id = amax != 0 ? 1.0f / amax : 0.0f;
            for (int i = 0; i < BlockSize; i++)
            {
                w[i] = (sbyte)MathF.Round(x[i] * id, MidpointRounding.AwayFromZero);
            }

            PackBlock(w, Fp16.FromFloat(amax), dst.Slice(b * BlockBytes, BlockBytes));
        }
    }

    /// <summary>Packs ternary weights (-1, 0, +1) with one scale per block.</summary>
    public static void EncodeTernary(ReadOnlySpan<sbyte> weights, ReadOnlySpan<float> blockScales, Span<byte> dst)
    {
        int blocks = CheckLengths(weights.Length, dst.Length);
        if (blockScales.Length < blocks)
        {
            throw new ArgumentException("one scale per block is needed", nameof(blockScales));
        }

        for (int b = 0; b < blocks; b++)
        {
            PackBlock(weights.Slice(b * BlockSize, BlockSize), Fp16.FromFloat(blockScales[b]), dst.Slice(b * BlockBytes, BlockBytes));
        }
    }

    public static void DecodeTernary(ReadOnlySpan<byte> src, Span<sbyte> weights)
    {
        int blocks = CheckLengths(weights.Length, src.Length);
        for (int b = 0; b < blocks; b++)
        {
            UnpackBlock(src.Slice(b * BlockBytes, BlockBytes), weights.Slice(b * BlockSize, BlockSize));
        }
    }

    public static float BlockScale(ReadOnlySpan<byte> block) =>
        Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(block[ScaleOffset..]));

    /// <summary>dequantize_row_tq1_0: x = (trit - 1) * d.</summary>
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blocks = CheckLengths(dst.Length, src.Length);
        Span<sbyte> w = stackalloc sbyte[BlockSize];
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<byte> y = src.Slice(b * BlockBytes, BlockBytes);
            UnpackBlock(y, w);
            float d = BlockScale(y);
            Span<float> x = dst.Slice(b * BlockSize, BlockSize);
            for (int i = 0; i < BlockSize; i++)
            {
                x[i] = w[i] * d;
            }
        }
    }

    private static void PackBlock(ReadOnlySpan<sbyte> w, ushort d, Span<byte> y)
    {
        for (int m = 0; m < 32; m++)
        {
            y[m] = PackTrits(w, m, 32, 5, extraShift: false);
        }

        for (int m = 0; m < 16; m++)
        {
            y[32 + m] = PackTrits(w, 160 + m, 16, 5, extraShift: false);
        }

        for (int j = 0; j < 4; j++)
        {
            y[QhOffset + j] = PackTrits(w, 240 + j, 4, 4, extraShift: true);
        }

        BinaryPrimitives.WriteUInt16LittleEndian(y[ScaleOffset..], d);
    }

    // count trits w[first + k*stride], the first in the most significant place, stored as ceil(q * 256 / 243).
    private static byte PackTrits(ReadOnlySpan<sbyte> w, int first, int stride, int count, bool extraShift)
    {
        int q = 0;
        for (int n = 0; n < count; n++)
        {
            q = (q * 3) + w[first + (n * stride)] + 1;
        }

        if (extraShift)
        {
            q *= 3;
        }

        return (byte)(((q * 256) + 242) / 243);
    }

    private static void UnpackBlock(ReadOnlySpan<byte> y, Span<sbyte> w)
    {
        for (int n = 0; n < 5; n++)
        {
            for (int m = 0; m < 32; m++)
            {
                w[(n * 32) + m] = Trit(y[m], n);
            }
        }

        for (int n = 0; n < 5; n++)
        {
            for (int m = 0; m < 16; m++)
            {
                w[160 + (n * 16) + m] = Trit(y[32 + m], n);
            }
        }

        for (int n = 0; n < 4; n++)
        {
            for (int j = 0; j < 4; j++)
            {
                w[240 + (n * 4) + j] = Trit(y[QhOffset + j], n);
            }
        }
    }

    private static sbyte Trit(byte packed, int n)
    {
        byte q = unchecked((byte)(packed * Pow3[n]));
        return (sbyte)(((q * 3) >> 8) - 1);
    }

    private static int CheckLengths(int elements, int bytes) =>
        GgmlTypeInfo.CheckBlockLengths("TQ1_0", BlockSize, BlockBytes, elements, bytes);
}
