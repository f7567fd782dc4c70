namespace Halo.Core.Formats;

/// <summary>
/// One tensor of a memory-mapped model file: zero-copy view of its bytes. Shape is in ggml order
/// (Shape[0] is the innermost, contiguous dimension: for a weight matrix, the input features).
/// The pointer is valid as long as the <see cref="IModelSource"/> that produced it is not disposed.
/// </summary>
public readonly unsafe struct TensorView
{
    public TensorView(string name, GgmlType type, long[] shape, byte* data, long byteLength)
    {
        Name = name;
        Type = type;
        Shape = shape;
        Data = data;
        ByteLength = byteLength;
    }

    public string Name { get; }

    public GgmlType Type { get; }

    public long[] Shape { get; }

    public byte* Data { get; }

    public long ByteLength { get; }

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Shape)
            {
                n *= d;
            }

            return n;
        }
    }

    /// <summary>The bytes of the tensor; only for tensors under 2 GiB (all BitNet tensors are).</summary>
    public ReadOnlySpan<byte> Bytes => new(Data, checked((int)ByteLength));
}
