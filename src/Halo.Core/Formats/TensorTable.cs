namespace Halo.Core.Formats;

/// <summary>
/// A model's tensors in order with a by-name index: the one lookup every format shares. A missing tensor is an
/// <see cref="InvalidModelException"/> naming the file. Adding a name that is already present points the name at
/// the new entry (the last one wins, as when the index is built from a list with repeats).
/// </summary>
internal sealed class TensorTable
{
    private readonly string _path;
    private readonly List<TensorView> _tensors;
    private readonly Dictionary<string, int> _byName;

    /// <summary>An empty table for the file or directory at <paramref name="path"/>.</summary>
    public TensorTable(string path)
    {
        _path = path;
        _tensors = [];
        _byName = new Dictionary<string, int>(StringComparer.Ordinal);
    }

    /// <summary>A table holding <paramref name="tensors"/> in their order.</summary>
    public TensorTable(string path, IReadOnlyList<TensorView> tensors)
    {
        _path = path;
        _tensors = new List<TensorView>(tensors.Count);
        _byName = new Dictionary<string, int>(tensors.Count, StringComparer.Ordinal);
        for (int i = 0; i < tensors.Count; i++)
        {
            Add(tensors[i]);
        }
    }

    /// <summary>Tensors in order.</summary>
    public IReadOnlyList<TensorView> All => _tensors;

    public int Count => _tensors.Count;

    /// <summary>The tensor at <paramref name="index"/>; a replacement must keep the name, so the index stays true.</summary>
    public TensorView this[int index]
    {
        get => _tensors[index];
        set
        {
            if (!string.Equals(value.Name, _tensors[index].Name, StringComparison.Ordinal))
            {
                throw new ArgumentException($"tensor {index} is '{_tensors[index].Name}', not '{value.Name}'", nameof(value));
            }

            _tensors[index] = value;
        }
    }

    /// <summary>Appends <paramref name="tensor"/>; its name now refers to it.</summary>
    public void Add(TensorView tensor)
    {
        _byName[tensor.Name] = _tensors.Count;
        _tensors.Add(tensor);
    }

    /// <summary>Replaces the tensor of the same name in place, or appends it when there is none.</summary>
    public void Set(TensorView tensor)
    {
        if (_byName.TryGetValue(tensor.Name, out int i))
        {
            _tensors[i] = tensor;
        }
        else
        {
            Add(tensor);
        }
    }

    public bool TryGet(string name, out TensorView tensor)
    {
        if (_byName.TryGetValue(name, out int i))
        {
            tensor = _tensors[i];
            return true;
        }

        tensor = default;
        return false;
    }

    public TensorView Get(string name) =>
        TryGet(name, out TensorView t) ? t : throw new InvalidModelException(_path, $"tensor '{name}' is missing");
}
