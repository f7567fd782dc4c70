using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using Halo.Core.Formats;

namespace Halo.Kernels.Layout;

/// <summary>
/// The GPU layout of a ternary weight matrix W [n, k] (n outputs, k inputs), built once at load:
/// <list type="bullet">
/// <item><c>Codes</c> [n, k / 16] uint: 16 consecutive inputs per word, input 4j + i of the word in bits
/// 8i + 2j..8i + 2j + 1, code = value + 1 (0, 1, 2). So <c>(word >> 2j) &amp; 0x03030303</c> holds the codes of
/// inputs 4j..4j + 3 one per byte, lined up with the four int8 activations of one 32-bit load
/// (<see cref="Kernels.TernaryWord"/>). Rows are contiguous so the 32 lanes of a warp read 32 consecutive words.</item>
/// <item><c>Scales</c> [n, k / 256] float: the ggml block scale of each 256-input block.</item>
/// </list>
/// Why not TQ2_0 as stored: its 66-byte blocks break 4-byte alignment and put the four codes of a byte 32
/// inputs apart, so a lane would gather activations from four places; TQ1_0's base-3 packing needs
/// multiplies to decode. This layout is 2 bits per weight plus 4 bytes per 256 weights (TQ1_0 files grow by
/// 18% on the GPU), every load is an aligned 32-bit word, and a word's codes become byte masks with shifts,
/// masks and a multiply.
/// </summary>
internal sealed class TernaryLayout
{
    public const int BlockSize = 256;
    public const int ValuesPerWord = 16;
    private const int Tq2BlockBytes = 66;
    private const int Tq1BlockBytes = 54;

    private TernaryLayout(int n, int k, uint[] codes, float[] scales)
    {
        Rows = n;
        Columns = k;
        Codes = codes;
        Scales = scales;
    }

    public int Rows { get; }

    public int Columns { get; }

    public uint[] Codes { get; }

    public float[] Scales { get; }

    /// <summary>Blocks one repack task decodes (256K weights).</summary>
    private const int RepackChunk = 1024;

    public static bool IsTernary(GgmlType type) => type is GgmlType.TQ2_0 or GgmlType.TQ1_0;

    /// <summary>Repacks a TQ2_0 or TQ1_0 tensor of ggml shape [k, n].</summary>
    public static TernaryLayout FromTensor(TensorView tensor, string file)
    {
        if (tensor.Shape.Length != 2)
        {
            throw new InvalidModelException(file, $"tensor {tensor.Name}: expected a matrix, got {tensor.Shape.Length} dimensions");
        }

        long k = tensor.Shape[0];
        long n = tensor.Shape[1];
        if (k % BlockSize != 0)
        {
            throw new InvalidModelException(file, $"tensor {tensor.Name}: input size {k} is not a multiple of {BlockSize}");
        }

        int blockBytes = tensor.Type switch
        {
            GgmlType.TQ2_0 => Tq2BlockBytes,
            GgmlType.TQ1_0 => Tq1BlockBytes,
            _ => throw new InvalidModelException(file, $"tensor {tensor.Name}: type {tensor.Type} is not ternary (TQ2_0 or TQ1_0)"),
        };
        long blocks = checked(n * (k / BlockSize));
        if (tensor.ByteLength != blocks * blockBytes)
        {
            throw new InvalidModelException(file, $"tensor {tensor.Name}: {tensor.ByteLength} bytes, expected {blocks * blockBytes} for {tensor.Type} [{k}, {n}]");
        }

        var codes = new uint[checked(n * k / ValuesPerWord)];
        var scales = new float[blocks];

        // blocks are independent. The repack is most of a GPU load's host work: for the 2B shapes, with the TQ2_0
        // words built directly, 2.5 -> 0.7 s on 2 cores (0.4 s once the file's pages are mapped)
        int chunks = (int)((blocks + RepackChunk - 1) / RepackChunk);
        Parallel.For(0, chunks, chunk =>
            RepackBlocks(tensor, blockBytes, (long)chunk * RepackChunk, Math.Min(blocks, (long)(chunk + 1) * RepackChunk), codes, scales));

        return new TernaryLayout((int)n, (int)k, codes, scales);
    }

    /// <summary>Repacks blocks [first, end) of a TQ2_0 or TQ1_0 tensor (optimised from the first call: it runs once, at load).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RepackBlocks(TensorView tensor, int blockBytes, long first, long end, uint[] codes, float[] scales)
    {
        ReadOnlySpan<byte> bytes = tensor.Bytes;
        Span<byte> blockCodes = stackalloc byte[BlockSize];
        for (long b = first; b < end; b++)
        {
            ReadOnlySpan<byte> block = bytes.Slice((int)(b * blockBytes), blockBytes);
            Span<uint> words = codes.AsSpan((int)(b * (BlockSize / ValuesPerWord)), BlockSize / ValuesPerWord);
            if (tensor.Type == GgmlType.TQ2_0)
            {
                scales[b] = RepackTq2(block, words);
            }
            else
            {
                scales[b] = DecodeTq1(block, blockCodes);
                PackBlock(blockCodes, words);
            }
        }
    }

    /// <summary>Builds the layout from ternary values [n, k] in {-1, 0, 1} and one scale per 256-block (tests, benchmarks).</summary>
    public static TernaryLayout FromValues(ReadOnlySpan<sbyte> values, ReadOnlySpan<float> blockScales, int n, int k)
    {
        var codes = new uint[n * k / ValuesPerWord];
        Span<byte> blockCodes = stackalloc byte[BlockSize];
        for (int b = 0; b < n * k / BlockSize; b++)
        {
            for (int i = 0; i < BlockSize; i++)
            {
                blockCodes[i] = (byte)(values[b * BlockSize + i] + 1);
            }

            PackBlock(blockCodes, codes.AsSpan(b * (BlockSize / ValuesPerWord), BlockSize / ValuesPerWord));
        }

        return new TernaryLayout(n, k, codes, blockScales.ToArray());
    }

    private static void PackBlock(ReadOnlySpan<byte> blockCodes, Span<uint> words)
    {
        for (int w = 0; w < words.Length; w++)
        {
            uint word = 0;
            for (int e = 0; e < ValuesPerWord; e++)
            {
                word |= (uint)blockCodes[w * ValuesPerWord + e] << CodeShift(e);
            }

            words[w] = word;
        }
    }

    /// <summary>Where input <paramref name="e"/> (0..15) of a word keeps its code: bits 8 (e % 4) + 2 (e / 4).</summary>
    public static int CodeShift(int e) => 8 * (e % 4) + 2 * (e / 4);

    // ggml block_tq2_0: qs[64], d (f16). Input j*4 + l*32 + m (j in {0, 32}, l < 4, m < 32) is bits 2l of qs[j + m];
    // the stored 2-bit value is already value + 1. So the 16 inputs of word 8h + 2l + q (h = j / 32) are field l of
    // the 16 bytes qs[32h + 16q ..], one per byte, already in the order the layout wants: inputs 4j..4j + 3 are four
    // consecutive bytes, shifted up by 2j. Each word is two 8-byte loads, shifts and masks.
    private static float RepackTq2(ReadOnlySpan<byte> block, Span<uint> words)
    {
        for (int h = 0; h < 2; h++)
        {
            for (int l = 0; l < 4; l++)
            {
                for (int q = 0; q < 2; q++)
                {
                    int first = 32 * h + 16 * q;
                    ulong low = (BinaryPrimitives.ReadUInt64LittleEndian(block.Slice(first, 8)) >> (2 * l)) & 0x0303030303030303UL;
                    ulong high = (BinaryPrimitives.ReadUInt64LittleEndian(block.Slice(first + 8, 8)) >> (2 * l)) & 0x0303030303030303UL;
                    words[8 * h + 2 * l + q] = (uint)low | ((uint)(low >> 32) << 2) | ((uint)high << 4) | ((uint)(high >> 32) << 6);
                }
            }
        }

        return (float)BinaryPrimitives.ReadHalfLittleEndian(block.Slice(64, 2));
    }

    // ggml block_tq1_0: qs[48] (five base-3 digits per byte, most significant first), qh[4] (four digits each), d (f16).
    // Digit n of byte q is ((q * 3^n) mod 256 * 3) >> 8, already value + 1.
    private static float DecodeTq1(ReadOnlySpan<byte> block, Span<byte> codes)
    {
        ReadOnlySpan<byte> qs = block[..48];
        ReadOnlySpan<byte> qh = block.Slice(48, 4);
        int o = 0;
        for (int n = 0; n < 5; n++)
        {
            for (int m = 0; m < 32; m++)
            {
                codes[o++] = Trit(qs[m], n);
            }
        }

        for (int n = 0; n < 5; n++)
        {
            for (int m = 0; m < 16; m++)
            {
                codes[o++] = Trit(qs[32 + m], n);
            }
        }

        for (int n = 0; n < 4; n++)
        {
            for (int j = 0; j < 4; j++)
            {
                codes[o++] = Trit(qh[j], n);
            }
        }

        return (float)BinaryPrimitives.ReadHalfLittleEndian(block.Slice(52, 2));
    }

    private static byte Trit(byte packed, int digit)
    {
        int power = 1;
        for (int i = 0; i < digit; i++)
        {
            power *= 3;
        }

        int q = (packed * power) & 0xFF;
        return (byte)((q * 3) >> 8);
    }
}
