using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Halo.Core.Formats;

namespace Halo.Kernels.Tests;

/// <summary>
/// Writes ternary matrices in ggml's TQ2_0 and TQ1_0 block layouts, following ggml's quantize_row_tq2_0_ref and
/// quantize_row_tq1_0_ref element orders, so the tests can feed the repacker real file bytes.
/// </summary>
internal static unsafe class GgmlTernaryEncoder
{
    public static byte[] EncodeTq2(ReadOnlySpan<sbyte> values, ReadOnlySpan<Half> blockScales)
    {
        var bytes = new byte[values.Length / 256 * 66];
        for (int b = 0; b < values.Length / 256; b++)
        {
            ReadOnlySpan<sbyte> x = values.Slice(b * 256, 256);
            Span<byte> block = bytes.AsSpan(b * 66, 66);
            for (int j = 0; j < 64; j += 32)
            {
                for (int m = 0; m < 32; m++)
                {
                    int q = 0;
                    for (int n = 0; n < 4; n++)
                    {
                        q |= (x[j * 4 + n * 32 + m] + 1) << (2 * n);
                    }

                    block[j + m] = (byte)q;
                }
            }

            BinaryPrimitives.WriteHalfLittleEndian(block[64..], blockScales[b]);
        }

        return bytes;
    }

    public static byte[] EncodeTq1(ReadOnlySpan<sbyte> values, ReadOnlySpan<Half> blockScales)
    {
        var bytes = new byte[values.Length / 256 * 54];
        for (int b = 0; b < values.Length / 256; b++)
        {
            ReadOnlySpan<sbyte> x = values.Slice(b * 256, 256);
            Span<byte> block = bytes.AsSpan(b * 54, 54);
            for (int m = 0; m < 32; m++)
            {
                block[m] = Pack(x, 5, n => n * 32 + m);
            }

            for (int m = 0; m < 16; m++)
            {
                block[32 + m] = Pack(x, 5, n => 160 + n * 16 + m);
            }

            for (int j = 0; j < 4; j++)
            {
                block[48 + j] = Pack(x, 4, n => 240 + n * 4 + j);
            }

            BinaryPrimitives.WriteHalfLittleEndian(block[52..], blockScales[b]);
        }

        return bytes;
    }

    // Base-3 digits, most significant first, padded to five digits, then scaled to a byte as ggml does:
    // q = ceil(v * 256 / 243).
    private static byte Pack(ReadOnlySpan<sbyte> x, int digits, Func<int, int> index)
    {
        int v = 0;
        for (int n = 0; n < 5; n++)
        {
            v = v * 3 + (n < digits ? x[index(n)] + 1 : 0);
        }

        return (byte)((v * 256 + 242) / 243);
    }

    /// <summary>A tensor view over pinned bytes; free the handle after use.</summary>
    public static TensorView View(string name, GgmlType type, long[] shape, byte[] bytes, out GCHandle handle)
    {
        handle = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        return new TensorView(name, type, shape, (byte*)handle.AddrOfPinnedObject(), bytes.Length);
    }
}
