namespace Halo.Core.Formats;

/// <summary>
/// The key/value metadata of a GGUF file in file order, with typed accessors. Getters that cannot find a key
/// or find the wrong type throw <see cref="InvalidModelException"/> naming the file and the key.
/// </summary>
public sealed class GgufMetadata
{
    private readonly Dictionary<string, GgufValue> _values = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    public GgufMetadata(string file = "")
    {
        File = file;
    }

    /// <summary>The file the metadata belongs to (for error messages).</summary>
    public string File { get; internal set; }

    public int Count => _order.Count;

    /// <summary>Keys in the order they were added or read.</summary>
    public IReadOnlyList<string> Keys => _order;

    public GgufValue this[string key] => _values.TryGetValue(key, out GgufValue? v)
        ? v
        : throw new InvalidModelException(File, _order.Count == 0
            ? $"metadata key '{key}' is missing: the file has no metadata at all (metadata_kv_count = 0)"
            : $"metadata key '{key}' is missing");

    public bool Contains(string key) => _values.ContainsKey(key);

    public bool TryGetValue(string key, out GgufValue value)
    {
        if (_values.TryGetValue(key, out GgufValue? v))
        {
            value = v;
            return true;
        }

        value = null!;
        return false;
    }

    /// <summary>Adds or replaces a value (replacing keeps the key's place).</summary>
    public void Set(string key, GgufValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (_values.TryAdd(key, value))
        {
            _order.Add(key);
        }
        else
        {
            _values[key] = value;
        }
    }

    /// <summary>Adds a key read from a file; a repeated key is an error (llama.cpp rejects it too).</summary>
    internal void AddFromFile(string key, GgufValue value)
    {
        if (!_values.TryAdd(key, value))
        {
            throw new InvalidModelException(File, $"metadata key '{key}' appears twice");
        }

        _order.Add(key);
    }

    public void Set(string key, string value) => Set(key, GgufValue.String(value));

    public void Set(string key, uint value) => Set(key, GgufValue.UInt32(value));

    public void Set(string key, int value) => Set(key, GgufValue.Int32(value));

    public void Set(string key, float value) => Set(key, GgufValue.Float32(value));

    public void Set(string key, bool value) => Set(key, GgufValue.Bool(value));

    public bool Remove(string key) => _values.Remove(key) && _order.Remove(key);

    public string? GetStringOrNull(string key) => _values.TryGetValue(key, out GgufValue? v) ? AsString(key, v) : null;

    public string GetString(string key) => AsString(key, this[key]);

    public long GetInt64(string key) => AsInt64(key, this[key]);

    public long? GetInt64OrNull(string key) => _values.TryGetValue(key, out GgufValue? v) ? AsInt64(key, v) : null;

    /// <summary>An integer key that must fit an int and lie in [min, max].</summary>
    public int GetInt32InRange(string key, int min, int max)
    {
        long v = GetInt64(key);
        return v >= min && v <= max
            ? (int)v
            : throw new InvalidModelException(File, $"metadata key '{key}' = {v} is out of range [{min}, {max}]");
    }

    public double? GetDoubleOrNull(string key)
    {
        if (!_values.TryGetValue(key, out GgufValue? v))
        {
            return null;
        }

        return v.TryGetDouble(out double d) && !v.IsArray
            ? d
            : throw new InvalidModelException(File, $"metadata key '{key}' should be a number, is {v.Type}");
    }

    public bool? GetBoolOrNull(string key)
    {
        if (!_values.TryGetValue(key, out GgufValue? v))
        {
            return null;
        }

        return v.Value is bool b ? b : throw new InvalidModelException(File, $"metadata key '{key}' should be a bool, is {v.Type}");
    }

    /// <summary>The array of a key, typed (<c>string[]</c>, <c>int[]</c>, ...), or null when absent.</summary>
    public T[]? GetArrayOrNull<T>(string key)
    {
        if (!_values.TryGetValue(key, out GgufValue? v))
        {
            return null;
        }

        return v.IsArray && v.Value is T[] a
            ? a
            : throw new InvalidModelException(File, $"metadata key '{key}' should be an array of {typeof(T).Name}, is {Describe(v)}");
    }

    /// <summary>An integer array of any integer element type, widened to int (values must fit).</summary>
    public int[]? GetInt32ArrayOrNull(string key)
    {
        if (!_values.TryGetValue(key, out GgufValue? v))
        {
            return null;
        }

        if (!v.IsArray)
        {
            throw new InvalidModelException(File, $"metadata key '{key}' should be an integer array, is {v.Type}");
        }

        switch (v.Value)
        {
            case int[] ints:
                return ints;
            case Array a when v.ElementType is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16
                or GgufValueType.Int16 or GgufValueType.UInt32 or GgufValueType.Int64 or GgufValueType.UInt64:
                var result = new int[a.Length];
                for (int i = 0; i < a.Length; i++)
                {
                    object element = a.GetValue(i)!;
                    long x = element is ulong u
                        ? (long)Math.Min(u, long.MaxValue)
                        : Convert.ToInt64(element, System.Globalization.CultureInfo.InvariantCulture);
                    result[i] = x is >= int.MinValue and <= int.MaxValue
                        ? (int)x
                        : throw new InvalidModelException(File, $"metadata key '{key}'[{i}] = {x} does not fit an int");
                }

                return result;
            default:
                throw new InvalidModelException(File, $"metadata key '{key}' should be an integer array, is {Describe(v)}");
        }
    }

    private string AsString(string key, GgufValue v) =>
        v.Value is string s && !v.IsArray ? s : throw new InvalidModelException(File, $"metadata key '{key}' should be a string, is {Describe(v)}");

    private long AsInt64(string key, GgufValue v) =>
        !v.IsArray && v.TryGetInt64(out long l) ? l : throw new InvalidModelException(File, $"metadata key '{key}' should be an integer, is {Describe(v)}");

    private static string Describe(GgufValue v) => v.IsArray ? $"an array of {v.ElementType}" : v.Type.ToString();
}
