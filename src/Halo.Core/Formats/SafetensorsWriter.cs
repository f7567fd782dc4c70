using System.Buffers.Binary;
using System.Text.Json;

namespace Halo.Core.Formats;

/// <summary>
/// Writes a .safetensors file (tests and tools make checkpoints with it): tensors are added with their dtype,
/// PyTorch-order shape and bytes, then written contiguously after the JSON header (padded with spaces to 8 bytes).
/// </summary>
public sealed class SafetensorsWriter
{
    private readonly List<(string Name, string DType, long[] Shape, byte[] Data)> _tensors = [];

    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public void Add(string name, string dtype, long[] shape, byte[] data)
    {
        long elements = 1;
        foreach (long d in shape)
        {
            elements *= d;
        }

        if (elements * SafetensorsFile.ElementSize(dtype) != data.Length)
        {
            throw new ArgumentException($"tensor '{name}': {dtype} [{string.Join(", ", shape)}] needs {elements * SafetensorsFile.ElementSize(dtype)} bytes, got {data.Length}");
        }

        _tensors.Add((name, dtype, shape, data));
    }

    public void Write(string path)
    {
        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (Metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach ((string k, string v) in Metadata)
                {
                    w.WriteString(k, v);
                }

                w.WriteEndObject();
            }

            long offset = 0;
            foreach ((string name, string dtype, long[] shape, byte[] data) in _tensors)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (long d in shape)
                {
                    w.WriteNumberValue(d);
                }

                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += data.Length;
            }

            w.WriteEndObject();
        }

        while (json.Length % 8 != 0)
        {
            json.WriteByte((byte)' ');
        }

        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)json.Length);
        file.Write(length);
        json.WriteTo(file);
        foreach (var t in _tensors)
        {
            file.Write(t.Data);
        }
    }

    /// <summary>Writes <c>model.safetensors.index.json</c> mapping each tensor name to its shard file name.</summary>
    public static void WriteIndex(string path, IReadOnlyDictionary<string, string> weightMap)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteStartObject("metadata");
        w.WriteEndObject();
        w.WriteStartObject("weight_map");
        foreach ((string name, string file) in weightMap)
        {
            w.WriteString(name, file);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    }
}
