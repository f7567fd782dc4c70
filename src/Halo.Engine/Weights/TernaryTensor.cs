using Halo.Core.Formats;

namespace Halo.Engine.Weights;

/// <summary>
/// A ternary weight tensor (<c>prefix.weight</c>) found and shape-checked, with its per-tensor scale
/// (<c>prefix.scale</c>, 1 when absent): what both the CPU repack and the GPU upload start from.
/// </summary>
public readonly record struct TernaryTensor(TensorView Weight, float Scale, int Rows, int Cols)
{
    public static unsafe TernaryTensor Find(IModelSource source, string prefix, int rows, int cols)
    {
        TensorView w = source.GetTensor(prefix + ".weight");
        if (w.Shape.Length != 2 || w.Shape[0] != cols || w.Shape[1] != rows)
        {
            throw new InvalidModelException(source.Path, $"tensor '{w.Name}' has shape [{string.Join(", ", w.Shape)}], expected [{cols}, {rows}]");
        }

        float scale = 1f;
        if (source.TryGetTensor(prefix + ".scale", out TensorView s))
        {
            if (s.ElementCount != 1 || s.Type != GgmlType.F32)
            {
                throw new InvalidModelException(source.Path, $"tensor '{s.Name}' must be one F32 value, is {s.Type} [{string.Join(", ", s.Shape)}]");
            }

            scale = *(float*)s.Data;
        }

        return new TernaryTensor(w, scale, rows, cols);
    }
}
