using System.Runtime.InteropServices;
using Halo.Core.Formats;

namespace Halo.Kernels.Layout;

/// <summary>
/// The GPU layout of an F16 matrix (token embedding, LM head): the file's halves unchanged, viewed as uints
/// holding two consecutive elements (element 2i in the low 16 bits), so a lane loads two weights per 32-bit
/// access and the row length must be even.
/// </summary>
internal static class HalfTable
{
    public static uint[] Pack(ReadOnlySpan<Half> values)
    {
        var packed = new uint[values.Length / 2];
        MemoryMarshal.Cast<Half, uint>(values[..(packed.Length * 2)]).CopyTo(packed);
        return packed;
    }

    /// <summary>
    /// An F16 tensor of ggml shape [width, rows] (width even) viewed in the packed layout, straight from the
    /// mapped file: the upload copies it once, with no host copy (the 2B LM head is 0.66 GB).
    /// </summary>
    public static ReadOnlySpan<uint> FromTensor(TensorView tensor, string file)
    {
        if (tensor.Type != GgmlType.F16)
        {
            throw new NotSupportedException($"tensor {tensor.Name} is {tensor.Type}; the GPU backend reads embeddings and the LM head as F16");
        }

        if (tensor.Shape.Length != 2 || tensor.Shape[0] % 2 != 0 || tensor.ByteLength != tensor.ElementCount * 2)
        {
            throw new InvalidModelException(file, $"tensor {tensor.Name}: expected an F16 matrix with an even row length, got shape [{string.Join(", ", tensor.Shape)}]");
        }

        return MemoryMarshal.Cast<byte, uint>(tensor.Bytes);
    }
}
