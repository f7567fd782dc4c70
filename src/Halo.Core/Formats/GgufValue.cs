using System.Globalization;

namespace Halo.Core.Formats;

/// <summary>
/// One GGUF metadata value: a scalar, a string or a typed array. Arrays keep their element type and are held as
/// the matching .NET array (<c>string[]</c>, <c>int[]</c>, <c>float[]</c>, <c>bool[]</c>, ...). Metadata is read
/// once at load, so values are plain objects; nothing here is on the per-token path.
/// </summary>
public sealed class GgufValue
{
    private GgufValue(GgufValueType type, GgufValueType elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        Value = value;
    }

    public GgufValueType Type { get; }

    /// <summary>The element type when <see cref="Type"/> is <see cref="GgufValueType.Array"/>.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The boxed scalar, the string, or the typed array.</summary>
    public object Value { get; }

    public bool IsArray => Type == GgufValueType.Array;

    /// <summary>Elements of an array value (0 for scalars).</summary>
    public int Count => Value is Array a && IsArray ? a.Length : 0;

    public static GgufValue UInt8(byte v) => new(GgufValueType.UInt8, default, v);

    public static GgufValue Int8(sbyte v) => new(GgufValueType.Int8, default, v);

    public static GgufValue UInt16(ushort v) => new(GgufValueType.UInt16, default, v);

    public static GgufValue Int16(short v) => new(GgufValueType.Int16, default, v);

    public static GgufValue UInt32(uint v) => new(GgufValueType.UInt32, default, v);

    public static GgufValue Int32(int v) => new(GgufValueType.Int32, default, v);

    public static GgufValue UInt64(ulong v) => new(GgufValueType.UInt64, default, v);

    public static GgufValue Int64(long v) => new(GgufValueType.Int64, default, v);

    public static GgufValue Float32(float v) => new(GgufValueType.Float32, default, v);

    public static GgufValue Float64(double v) => new(GgufValueType.Float64, default, v);

    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, default, v);

    public static GgufValue String(string v) => new(GgufValueType.String, default, v);

    /// <summary>An array; <paramref name="elements"/> must be the .NET array matching <paramref name="elementType"/>.</summary>
    public static GgufValue Array(GgufValueType elementType, Array elements)
    {
        Type expected = ClrElementType(elementType);
        if (elements.GetType().GetElementType() != expected)
        {
            throw new ArgumentException($"a GGUF {elementType} array must be a {expected.Name}[]", nameof(elements));
        }

        return new GgufValue(GgufValueType.Array, elementType, elements);
    }

    public static GgufValue StringArray(string[] v) => Array(GgufValueType.String, v);

    public static GgufValue Int32Array(int[] v) => Array(GgufValueType.Int32, v);

    public static GgufValue Float32Array(float[] v) => Array(GgufValueType.Float32, v);

    /// <summary>The .NET element type used for arrays of this GGUF type (nested arrays are <see cref="GgufValue"/>).</summary>
    public static Type ClrElementType(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Float64 => typeof(double),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.Array => typeof(GgufValue),
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown GGUF value type"),
    };

    /// <summary>Any integer scalar as a long (false for other types or a uint64 above long.MaxValue).</summary>
    public bool TryGetInt64(out long value)
    {
        switch (Value)
        {
            case byte v: value = v; return true;
            case sbyte v: value = v; return true;
            case ushort v: value = v; return true;
            case short v: value = v; return true;
            case uint v: value = v; return true;
            case int v: value = v; return true;
            case long v: value = v; return true;
            case ulong v when v <= long.MaxValue: value = (long)v; return true;
            default: value = 0; return false;
        }
    }

    /// <summary>Any numeric scalar as a double.</summary>
    public bool TryGetDouble(out double value)
    {
        switch (Value)
        {
            case float f: value = f; return true;
            case double d: value = d; return true;
            default:
                bool ok = TryGetInt64(out long l);
                value = l;
                return ok;
        }
    }

    public override string ToString() => Value switch
    {
        string s => s,
        Array a => $"[{ElementType} x {a.Length}]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? string.Empty,
    };
}
