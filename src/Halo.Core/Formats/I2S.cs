using System.Buffers.Binary;

namespace Halo.Core.Formats;

/// <summary>
/// Microsoft bitnet.cpp's I2_S tensor type (ggml id 36 in its fork), x86 layout (QK_I2_S = 128), as its
/// <c>quantize_i2_s</c> writes it: the tensor is flattened (n = rows x row length) and cut into blocks of 128
/// weights; block <c>i</c> is 32 bytes where byte <c>i*32 + p</c> holds elements <c>p + 32g</c> (g = 0..3) with
/// g = 0 in the two most significant bits (shift <c>6 - 2g</c>). Codes: 0 = -1, 1 = 0, 2 = +1. After the
/// n / 4 code bytes comes one float32, the per-tensor scale (max |w|), padded to 32 bytes. So w = (code - 1) x scale.
/// bitnet.cpp's ARM builds use 64-weight blocks instead; files converted there are not readable with this layout.
/// </summary>
public static class I2S
{
    public const int BlockSize = 128;
    public const int TrailerBytes = 32;

    public static long TensorBytes(long elements) => ((elements + 3) / 4) + TrailerBytes;

    /// <summary>The per-tensor scale stored after the codes.</summary>
    public static float Scale(ReadOnlySpan<byte> tensor, long elements) =>
        BinaryPrimitives.ReadSingleLittleEndian(tensor[checked((int)(elements / 4))..]);

    /// <summary>Unpacks the ternary values (-1, 0, +1) of a whole tensor of <paramref name="weights"/>.Length elements.</summary>
    public static void Decode(ReadOnlySpan<byte> tensor, Span<sbyte> weights)
    {
        int n = weights.Length;
        if (n % BlockSize != 0 || tensor.Length < TensorBytes(n))
        {
            throw new ArgumentException($"I2_S needs a multiple of {BlockSize} elements and {TensorBytes(n)} bytes");
        }

        for (int block = 0; block < n / BlockSize; block++)
        {
            ReadOnlySpan<byte> codes = tensor.Slice(block * 32, 32);
            Span<sbyte> w = weights.Slice(block * BlockSize, BlockSize);
            for (int g = 0; g < 4; g++)
            {
                int shift = 6 - (2 * g);
                for (int p = 0; p < 32; p++)
                {
                    w[(g * 32) + p] = (sbyte)(((codes[p] >> shift) & 3) - 1);
                }
            }
        }
    }

    /// <summary>Packs ternary values with the per-tensor scale (bitnet.cpp stores max |w|).</summary>
    public static void Encode(ReadOnlySpan<sbyte> weights, float scale, Span<byte> tensor)
    {
        int n = weights.Length;
        if (n % BlockSize != 0 || tensor.Length < TensorBytes(n))
        {
            throw new ArgumentException($"I2_S needs a multiple of {BlockSize} elements and {TensorBytes(n)} bytes");
        }

        tensor[..(int)TensorBytes(n)].Clear();
        for (int block = 0; block < n / BlockSize; block++)
        {
            Span<byte> codes = tensor.Slice(block * 32, 32);
            ReadOnlySpan<sbyte> w = weights.Slice(block * BlockSize, BlockSize);
            for (int g = 0; g < 4; g++)
            {
                for (int p = 0; p < 32; p++)
                {
                    codes[p] |= (byte)((w[(g * 32) + p] + 1) << (6 - (2 * g)));
                }
            }
        }

        BinaryPrimitives.WriteSingleLittleEndian(tensor[(n / 4)..], scale);
    }
}
