using System.Buffers.Binary;
using System.Text.Json;

namespace Halo.Core.Formats;

/// <summary>One tensor of a .safetensors file: dtype, shape in PyTorch order (outermost first), mapped bytes.</summary>
public readonly unsafe struct SafetensorsTensor(string name, string dtype, long[] shape, byte* data, long byteLength)
{
    public string Name { get; } = name;

    public string DType { get; } = dtype;

    public long[] Shape { get; } = shape;

    public byte* Data { get; } = data;

    public long ByteLength { get; } = byteLength;

    public ReadOnlySpan<byte> Bytes => new(Data, checked((int)ByteLength));

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
}

/// <summary>
/// A memory-mapped Hugging Face .safetensors file: u64 header length, a JSON header mapping names to
/// <c>{dtype, shape, data_offsets}</c> (and optional <c>__metadata__</c>), then the tensor bytes. The header is
/// bounded (100 MiB, as the format specifies) and every offset, size and shape is checked against the file.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    public const long MaxHeaderBytes = 100L << 20;

    private readonly MappedFile _file;
    private readonly Dictionary<string, SafetensorsTensor> _tensors;

    private SafetensorsFile(MappedFile file, Dictionary<string, SafetensorsTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        _file = file;
        _tensors = tensors;
        Metadata = metadata;
    }

    public string Path => _file.Path;

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public IReadOnlyCollection<SafetensorsTensor> Tensors => _tensors.Values;

    public bool TryGetTensor(string name, out SafetensorsTensor tensor) => _tensors.TryGetValue(name, out tensor);

    /// <summary>Bytes per element of a safetensors dtype, or 0 when Halo does not read it.</summary>
    public static int ElementSize(string dtype) => dtype switch
    {
        "F32" or "I32" => 4,
        "F16" or "BF16" or "I16" => 2,
        "U8" or "I8" or "BOOL" => 1,
        "F64" or "I64" => 8,
        _ => 0,
    };

    public static SafetensorsFile Open(string path)
    {
        MappedFile file = MappedFile.Open(path);
        try
        {
            return new SafetensorsFile(file, Parse(file, out var metadata), metadata);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose() => _file.Dispose();

    private static Dictionary<string, SafetensorsTensor> Parse(MappedFile file, out IReadOnlyDictionary<string, string> metadata)
    {
        string path = file.Path;
        if (file.Length < 8)
        {
            throw new InvalidModelException(path, $"truncated: {file.Length} bytes is shorter than the 8-byte safetensors header length");
        }

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(file.Pointer, 8));
        if (headerLength > (ulong)(file.Length - 8) || headerLength > MaxHeaderBytes)
        {
            throw new InvalidModelException(path, $"header length {headerLength} runs past the end of the file ({file.Length} bytes) or exceeds 100 MiB");
        }

        long dataStart = 8 + (long)headerLength;
        long dataLength = file.Length - dataStart;
        var tensors = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument doc = JsonDocument.Parse(new ReadOnlyMemory<byte>(new ReadOnlySpan<byte>(file.Pointer + 8, (int)headerLength).ToArray()));
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidModelException(path, "the header is not a JSON object");
            }

            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    foreach (JsonProperty m in p.Value.EnumerateObject())
                    {
                        meta[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    }

                    continue;
                }

                SafetensorsTensor t = ReadEntry(path, file.Pointer + dataStart, dataLength, p);
                if (!tensors.TryAdd(p.Name, t))
                {
                    throw new InvalidModelException(path, $"tensor '{p.Name}' appears twice");
                }

                ranges.Add((t.Data - (file.Pointer + dataStart), t.Data - (file.Pointer + dataStart) + t.ByteLength, p.Name));
            }

            ranges.Sort((a, b) => a.Begin.CompareTo(b.Begin));
            for (int i = 1; i < ranges.Count; i++)
            {
                if (ranges[i].Begin < ranges[i - 1].End)
                {
                    throw new InvalidModelException(path, $"tensor '{ranges[i].Name}' overlaps tensor '{ranges[i - 1].Name}'");
                }
            }
        }
        catch (JsonException e)
        {
            throw new InvalidModelException(path, $"the header is not valid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidModelException(path, $"the header has an unexpected structure: {e.Message}", e);
        }

        metadata = meta;
        return tensors;
    }

    private static SafetensorsTensor ReadEntry(string path, byte* data, long dataLength, JsonProperty p)
    {
        JsonElement e = p.Value;
        string name = p.Name;
        string dtype = e.TryGetProperty("dtype", out JsonElement dt) && dt.ValueKind == JsonValueKind.String
            ? dt.GetString()!
            : throw new InvalidModelException(path, $"tensor '{name}' has no dtype");
        int size = ElementSize(dtype);
        if (size == 0)
        {
            throw new InvalidModelException(path, $"tensor '{name}' has unsupported dtype '{dtype}'");
        }

        if (!e.TryGetProperty("shape", out JsonElement shapeJson) || shapeJson.ValueKind != JsonValueKind.Array || shapeJson.GetArrayLength() > 8)
        {
            throw new InvalidModelException(path, $"tensor '{name}' has no valid shape");
        }

        var shape = new long[shapeJson.GetArrayLength()];
        long elements = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (!shapeJson[i].TryGetInt64(out long d) || d < 0 || (d != 0 && elements > long.MaxValue / size / d))
            {
                throw new InvalidModelException(path, $"tensor '{name}' shape entry {i} is negative, not an integer or overflows");
            }

            shape[i] = d;
            elements *= d;
        }

        if (!e.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
        {
            throw new InvalidModelException(path, $"tensor '{name}' has no valid data_offsets");
        }

        if (begin < 0 || end < begin || end > dataLength)
        {
            throw new InvalidModelException(path, $"tensor '{name}' data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes): truncated or corrupt");
        }

        if (end - begin != elements * size)
        {
            throw new InvalidModelException(path, $"tensor '{name}' holds {end - begin} bytes but {dtype} [{string.Join(", ", shape)}] needs {elements * size}");
        }

        return new SafetensorsTensor(name, dtype, shape, data + begin, end - begin);
    }
}
