using System.Buffers.Binary;

namespace Halo.Core.Formats;

/// <summary>ggml's Q8_0 block: F16 scale <c>d</c> then 32 int8 <c>qs</c> (34 bytes); x = qs * d.</summary>
public static class Q8_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 34;

    /// <summary>quantize_row_q8_0_ref: d = max|x| / 127, q = round(x / d).</summary>
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

            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            BinaryPrimitives.WriteUInt16LittleEndian(y, Fp16.FromFloat(d));
            for (int j = 0; j < BlockSize; j++)
            {
                y[2 + j] = unchecked((byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero));
            }
        }
    }

    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blocks = CheckLengths(dst.Length, src.Length);
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<byte> y = src.Slice(b * BlockBytes, BlockBytes);
            float d = Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(y));
            for (int j = 0; j < BlockSize; j++)
            {
                dst[(b * BlockSize) + j] = (sbyte)y[2 + j] * d;
            }
        }
    }

    private static int CheckLengths(int elements, int bytes) =>
        GgmlTypeInfo.CheckBlockLengths("Q8_0", BlockSize, BlockBytes, elements, bytes);
}
