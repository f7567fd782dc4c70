namespace Halo.Core.Formats;

/// <summary>
/// Block geometry of each <see cref="GgmlType"/> as ggml defines it: a row of n elements is n / BlockSize
/// blocks of TypeSize bytes. I2_S is the exception (see <see cref="I2S"/>): its size is per tensor.
/// </summary>
public static class GgmlTypeInfo
{
    public static bool IsKnown(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.I8 or GgmlType.I32
            or GgmlType.TQ1_0 or GgmlType.TQ2_0 or GgmlType.I2_S => true,
        _ => false,
    };

    /// <summary>Elements per block (1 for plain types, 32 for Q8_0, 256 for the ternary types).</summary>
    public static int BlockSize(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.I8 or GgmlType.I32 or GgmlType.I2_S => 1,
        GgmlType.Q8_0 => Q8_0.BlockSize,
        GgmlType.TQ1_0 => Tq1_0.BlockSize,
        GgmlType.TQ2_0 => Tq2_0.BlockSize,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown ggml type"),
    };

    /// <summary>Bytes per block.</summary>
    public static int TypeSize(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.I32 => 4,
        GgmlType.F16 or GgmlType.BF16 => 2,
        GgmlType.I8 => 1,
        GgmlType.I2_S => 1,
        GgmlType.Q8_0 => Q8_0.BlockBytes,
        GgmlType.TQ1_0 => Tq1_0.BlockBytes,
        GgmlType.TQ2_0 => Tq2_0.BlockBytes,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown ggml type"),
    };

    /// <summary>Bytes of one row of <paramref name="elements"/> elements (not for I2_S, which packs whole tensors).</summary>
    public static long RowBytes(GgmlType type, long elements)
    {
        int block = BlockSize(type);
        if (elements % block != 0)
        {
            throw new ArgumentException($"{type} rows must be a multiple of {block} elements, got {elements}", nameof(elements));
        }

        return checked(elements / block * TypeSize(type));
    }

    /// <summary>
    /// Bytes of a whole tensor of this shape (ggml order, shape[0] innermost), or false when the row length is not
    /// a whole number of blocks or the size overflows.
    /// </summary>
    public static bool TryTensorBytes(GgmlType type, ReadOnlySpan<long> shape, out long bytes)
    {
        bytes = 0;
        if (!IsKnown(type) || shape.Length == 0)
        {
            return false;
        }

        long elements = 1;
        foreach (long d in shape)
        {
            if (d < 0 || (d != 0 && elements > long.MaxValue / d))
            {
                return false;
            }

            elements *= d;
        }

        if (type == GgmlType.I2_S)
        {
            bytes = I2S.TensorBytes(elements);
            return true;
        }

        int block = BlockSize(type);
        if (shape[0] % block != 0)
        {
            return false;
        }

        long blocks = elements / block;
        int size = TypeSize(type);
        if (blocks > long.MaxValue / size)
        {
            return false;
        }

        bytes = blocks * size;
        return true;
    }

    /// <summary>The lower-case name ggml prints ("tq2_0").</summary>
    public static string Name(GgmlType type) => type.ToString().ToLowerInvariant();

    /// <summary>
    /// The number of blocks in <paramref name="elements"/> values of a block type, after checking they are whole
    /// blocks and that <paramref name="bytes"/> holds them; otherwise an <see cref="ArgumentException"/> naming the type.
    /// </summary>
    internal static int CheckBlockLengths(string typeName, int blockSize, int blockBytes, int elements, int bytes)
    {
        if (elements % blockSize != 0)
        {
            throw new ArgumentException($"{typeName} needs a multiple of {blockSize} elements, got {elements}");
        }

        int blocks = elements / blockSize;
        if (bytes < blocks * blockBytes)
        {
            throw new ArgumentException($"{typeName}: {blocks} blocks need {blocks * blockBytes} bytes, got {bytes}");
        }

        return blocks;
    }
}
