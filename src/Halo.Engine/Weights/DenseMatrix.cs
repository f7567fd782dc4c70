using Halo.Core.Formats;

namespace Halo.Engine.Weights;

/// <summary>
/// A dense F32, F16 or BF16 matrix [rows, cols] read in place from the memory-mapped model file: the token
/// embedding and the LM head. Row r starts at element r * cols.
/// </summary>
public sealed unsafe class DenseMatrix
{
    private DenseMatrix(string name, GgmlType type, int rows, int cols, byte* data)
    {
        Name = name;
        Type = type;
        Rows = rows;
        Cols = cols;
        Data = data;
    }

    public string Name { get; }

    public GgmlType Type { get; }

    public int Rows { get; }

    public int Cols { get; }

    public byte* Data { get; }

    public static DenseMatrix FromTensor(string file, TensorView tensor, int expectedCols)
    {
        if (tensor.Shape.Length != 2 || tensor.Shape[0] != expectedCols || tensor.Shape[1] <= 0 || tensor.Shape[1] > int.MaxValue)
        {
            throw new InvalidModelException(file, $"tensor '{tensor.Name}' has shape [{string.Join(", ", tensor.Shape)}], expected [{expectedCols}, vocab]");
        }

        int elementBytes = tensor.Type switch
        {
            GgmlType.F32 => 4,
            GgmlType.F16 or GgmlType.BF16 => 2,
            _ => throw new InvalidModelException(file, $"tensor '{tensor.Name}' has type {tensor.Type}; embeddings and the LM head must be F32, F16 or BF16"),
        };
        long needed = tensor.Shape[0] * tensor.Shape[1] * elementBytes;
        if (tensor.ByteLength < needed)
        {
            throw new InvalidModelException(file, $"tensor '{tensor.Name}' holds {tensor.ByteLength} bytes, its shape and type need {needed}");
        }

        return new DenseMatrix(tensor.Name, tensor.Type, (int)tensor.Shape[1], (int)tensor.Shape[0], tensor.Data);
    }

    /// <summary>Copies row r, converted to float, to <paramref name="destination"/> [cols].</summary>
    public void ReadRow(int row, Span<float> destination)
    {
        long start = (long)row * Cols;
        switch (Type)
        {
            case GgmlType.F32:
                new ReadOnlySpan<float>((float*)Data + start, Cols).CopyTo(destination);
                break;
            case GgmlType.F16:
                ushort* h = (ushort*)Data + start;
                for (int i = 0; i < Cols; i++)
                {
                    destination[i] = HalfBits.ToSingle(h[i]);
                }

                break;
            default:
                ushort* b = (ushort*)Data + start;
                for (int i = 0; i < Cols; i++)
                {
                    destination[i] = HalfBits.BFloat16ToSingle(b[i]);
                }

                break;
        }
    }
}
