using System.Buffers.Binary;
using System.Text;

namespace Halo.Core.Formats;

/// <summary>
/// A GGUF (v2/v3) file, memory-mapped: its metadata, its tensor table and zero-copy views of the tensor data.
/// Every count, length, shape and offset is checked against the file size before use, so a corrupt or truncated
/// file gives one <see cref="InvalidModelException"/> naming the file and the field, never a crash or a huge
/// allocation. Layout: "GGUF", u32 version, u64 tensor count, u64 kv count, kvs, tensor infos, padding to
/// <c>general.alignment</c> (default 32), tensor data (offsets relative to its start, each aligned).
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    public const uint Magic = 0x46554747; // "GGUF" little-endian
    public const uint CurrentVersion = 3;
    public const uint DefaultAlignment = 32;
    public const string AlignmentKey = "general.alignment";

    /// <summary>ggml tensors have at most 4 dimensions.</summary>
    public const int MaxDimensions = 4;

    private const int HeaderBytes = 24;
    private const int MaxArrayDepth = 4;

    private readonly MappedFile _file;
    private readonly TensorTable _tensors;
    private readonly long[] _offsets;

    private GgufFile(MappedFile file, uint version, GgufMetadata metadata, uint alignment, long dataOffset, TensorView[] tensors, long[] offsets)
    {
        _file = file;
        Version = version;
        Metadata = metadata;
        Alignment = alignment;
        DataOffset = dataOffset;
        _tensors = new TensorTable(file.Path, tensors);
        _offsets = offsets;
    }

    public string Path => _file.Path;

    public long FileLength => _file.Length;

    public uint Version { get; }

    public GgufMetadata Metadata { get; }

    public uint Alignment { get; }

    /// <summary>Absolute file offset of the tensor data section.</summary>
    public long DataOffset { get; }

    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<TensorView> Tensors => _tensors.All;

    /// <summary>Offset of tensor <paramref name="index"/> relative to <see cref="DataOffset"/>, as the table stores it.</summary>
    public long TensorOffset(int index) => _offsets[index];

    public bool TryGetTensor(string name, out TensorView tensor) => _tensors.TryGet(name, out tensor);

    public TensorView GetTensor(string name) => _tensors.Get(name);

    /// <summary>True when the file starts with the GGUF magic.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> head) =>
        head.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(head) == Magic;

    public static GgufFile Open(string path)
    {
        MappedFile file = MappedFile.Open(path);
        try
        {
            return Parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public void Dispose() => _file.Dispose();

    private static GgufFile Parse(MappedFile file)
    {
        var r = new Cursor(file.Pointer, file.Length, file.Path);
        if (file.Length < HeaderBytes)
        {
            throw new InvalidModelException(file.Path, $"truncated: {file.Length} bytes is shorter than the 24-byte GGUF header");
        }

        uint magic = r.U32("magic");
        if (magic != Magic)
        {
            throw new InvalidModelException(file.Path, $"bad magic 0x{magic:x8} (expected \"GGUF\"): not a GGUF file");
        }

        uint version = r.U32("version");
        if (version is not (2 or 3))
        {
            string why = BinaryPrimitives.ReverseEndianness(version) is 2 or 3
                ? "big-endian GGUF files are not supported"
                : version == 1 ? "GGUF v1 is obsolete; convert the model again" : "supported versions are 2 and 3";
            throw new InvalidModelException(file.Path, $"unsupported GGUF version {version}: {why}");
        }

        // Each tensor info takes at least 24 bytes and each kv at least 13, which bounds both counts by the file.
        long tensorCount = r.Count("tensor_count", minBytesEach: 24);
        long kvCount = r.Count("metadata_kv_count", minBytesEach: 13);

        var metadata = new GgufMetadata(file.Path);
        for (long i = 0; i < kvCount; i++)
        {
            string key = r.String($"metadata key #{i}");
            var type = (GgufValueType)r.U32($"type of metadata '{key}'");
            metadata.AddFromFile(key, r.Value(type, key, depth: 0));
        }

        uint alignment = DefaultAlignment;
        if (metadata.TryGetValue(AlignmentKey, out GgufValue a))
        {
            alignment = a.Value is uint u && u != 0 && (u & (u - 1)) == 0
                ? u
                : throw new InvalidModelException(file.Path, $"metadata '{AlignmentKey}' = {a} must be a power-of-two uint32");
        }

        long tableStart = r.Position;
        (string Name, GgmlType Type, long[] Shape, long Offset)[] infos;
        try
        {
            infos = ReadTensorInfos(ref r, file.Path, tensorCount);
        }
        catch (InvalidModelException e) when (kvCount == 0 && MetadataKeyAt(file, tableStart) is { } key)
        {
            // A zeroed kv count makes the metadata be read as the tensor table, whose first "tensor" then fails in
            // some unrelated field; name the count instead.
            throw new InvalidModelException(file.Path,
                $"metadata_kv_count is 0, but a metadata entry ('{key}') follows the header where the tensor table should start: the header's metadata count is corrupt", e);
        }

        long dataOffset = AlignUp(r.Position, alignment);
        if (tensorCount > 0 && dataOffset > file.Length)
        {
            throw new InvalidModelException(file.Path, $"truncated: the tensor data section would start at {dataOffset}, past the end ({file.Length} bytes)");
        }

        var tensors = new TensorView[tensorCount];
        var offsets = new long[tensorCount];
        long dataLength = file.Length - Math.Min(dataOffset, file.Length);
        for (int i = 0; i < tensorCount; i++)
        {
            (string name, GgmlType type, long[] shape, long offset) = infos[i];
            if (!GgmlTypeInfo.TryTensorBytes(type, shape, out long bytes))
            {
                string why = type != GgmlType.I2_S && shape[0] % GgmlTypeInfo.BlockSize(type) != 0
                    ? $"row length {shape[0]} is not a multiple of the {GgmlTypeInfo.Name(type)} block ({GgmlTypeInfo.BlockSize(type)})"
                    : "its size overflows";
                throw new InvalidModelException(file.Path, $"tensor '{name}' shape [{string.Join(", ", shape)}]: {why}");
            }

            if (offset % alignment != 0)
            {
                throw new InvalidModelException(file.Path, $"tensor '{name}' offset {offset} is not aligned to {alignment}");
            }

            if (offset > dataLength || bytes > dataLength - offset)
            {
                throw new InvalidModelException(file.Path,
                    $"tensor '{name}' data [{offset}, +{bytes}) runs past the end of the file ({dataLength} data bytes): the file is truncated or corrupt");
            }

            tensors[i] = new TensorView(name, type, shape, file.Pointer + dataOffset + offset, bytes);
            offsets[i] = offset;
        }

        CheckNoOverlap(file.Path, tensors, offsets);
        return new GgufFile(file, version, metadata, alignment, dataOffset, tensors, offsets);
    }

    private static (string Name, GgmlType Type, long[] Shape, long Offset)[] ReadTensorInfos(ref Cursor r, string path, long tensorCount)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var infos = new (string Name, GgmlType Type, long[] Shape, long Offset)[tensorCount];
        for (long i = 0; i < tensorCount; i++)
        {
            string name = r.String($"name of tensor #{i}");
            if (!names.Add(name))
            {
                throw new InvalidModelException(path, $"tensor '{name}' appears twice in the tensor table");
            }

            uint dims = r.U32($"tensor '{name}' n_dims");
            if (dims is 0 or > MaxDimensions)
            {
                throw new InvalidModelException(path, $"tensor '{name}' has {dims} dimensions (1 to {MaxDimensions} allowed)");
            }

            var shape = new long[dims];
            for (int d = 0; d < dims; d++)
            {
                ulong n = r.U64($"tensor '{name}' ne[{d}]");
                shape[d] = n <= long.MaxValue
                    ? (long)n
                    : throw new InvalidModelException(path, $"tensor '{name}' dimension {d} = {n} overflows");
            }

            uint rawType = r.U32($"tensor '{name}' type");
            var type = (GgmlType)rawType;
            if (!GgmlTypeInfo.IsKnown(type))
            {
                throw new InvalidModelException(path, $"tensor '{name}' has unknown ggml type {rawType}");
            }

            ulong offset = r.U64($"tensor '{name}' offset");
            infos[i] = (name, type, shape, offset <= long.MaxValue ? (long)offset : long.MaxValue);
        }

        return infos;
    }

    /// <summary>The key of the metadata entry that parses completely at <paramref name="position"/>, or null.</summary>
    private static string? MetadataKeyAt(MappedFile file, long position)
    {
        var r = new Cursor(file.Pointer, file.Length, file.Path);
        try
        {
            r.Seek(position);
            string key = r.String("metadata key");
            var type = (GgufValueType)r.U32("metadata type");
            r.Value(type, key, depth: 0);
            return key;
        }
        catch (InvalidModelException)
        {
            return null;
        }
    }

    private static void CheckNoOverlap(string path, TensorView[] tensors, long[] offsets)
    {
        var order = new int[tensors.Length];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, (x, y) => offsets[x].CompareTo(offsets[y]));
        for (int k = 1; k < order.Length; k++)
        {
            int prev = order[k - 1];
            int cur = order[k];
            if (offsets[prev] + tensors[prev].ByteLength > offsets[cur])
            {
                throw new InvalidModelException(path, $"tensor '{tensors[cur].Name}' at offset {offsets[cur]} overlaps tensor '{tensors[prev].Name}'");
            }
        }
    }

    internal static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;

    /// <summary>A bounds-checked little-endian reader over the mapped header.</summary>
    private struct Cursor(byte* start, long length, string path)
    {
        public long Position { get; private set; }

        private readonly long Remaining => length - Position;

        public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));

        public ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

        public void Seek(long position) =>
            Position = position >= 0 && position <= length ? position : throw new ArgumentOutOfRangeException(nameof(position));

        /// <summary>A u64 count that cannot exceed what the rest of the file could hold.</summary>
        public long Count(string field, long minBytesEach)
        {
            ulong n = U64(field);
            return n <= (ulong)(Remaining / minBytesEach)
                ? (long)n
                : throw new InvalidModelException(path, $"{field} = {n} is impossible: only {Remaining} bytes of the file remain at offset {Position} (truncated or corrupt)");
        }

        public string String(string field)
        {
            ulong n = U64(field);
            if (n > (ulong)Remaining)
            {
                throw new InvalidModelException(path, $"{field}: string length {n} runs past the end of the file at offset {Position}");
            }

            if (n > int.MaxValue)
            {
                throw new InvalidModelException(path, $"{field}: string length {n} is too large");
            }

            return Encoding.UTF8.GetString(Take((int)n, field));
        }

        public GgufValue Value(GgufValueType type, string key, int depth) => type switch
        {
            GgufValueType.UInt8 => GgufValue.UInt8(Take(1, key)[0]),
            GgufValueType.Int8 => GgufValue.Int8((sbyte)Take(1, key)[0]),
            GgufValueType.UInt16 => GgufValue.UInt16(BinaryPrimitives.ReadUInt16LittleEndian(Take(2, key))),
            GgufValueType.Int16 => GgufValue.Int16(BinaryPrimitives.ReadInt16LittleEndian(Take(2, key))),
            GgufValueType.UInt32 => GgufValue.UInt32(U32(key)),
            GgufValueType.Int32 => GgufValue.Int32(BinaryPrimitives.ReadInt32LittleEndian(Take(4, key))),
            GgufValueType.UInt64 => GgufValue.UInt64(U64(key)),
            GgufValueType.Int64 => GgufValue.Int64(BinaryPrimitives.ReadInt64LittleEndian(Take(8, key))),
            GgufValueType.Float32 => GgufValue.Float32(BinaryPrimitives.ReadSingleLittleEndian(Take(4, key))),
            GgufValueType.Float64 => GgufValue.Float64(BinaryPrimitives.ReadDoubleLittleEndian(Take(8, key))),
            GgufValueType.Bool => GgufValue.Bool(Bool(key)),
            GgufValueType.String => GgufValue.String(String($"metadata '{key}'")),
            GgufValueType.Array => Array(key, depth),
            _ => throw new InvalidModelException(path, $"metadata '{key}' has unknown value type {(uint)type}"),
        };

        private bool Bool(string key)
        {
            byte b = Take(1, key)[0];
            return b <= 1 ? b == 1 : throw new InvalidModelException(path, $"metadata '{key}': bool byte {b} is not 0 or 1");
        }

        private GgufValue Array(string key, int depth)
        {
            if (depth >= MaxArrayDepth)
            {
                throw new InvalidModelException(path, $"metadata '{key}': arrays nested deeper than {MaxArrayDepth}");
            }

            uint rawElement = U32($"metadata '{key}' array type");
            var element = (GgufValueType)rawElement;
            if (rawElement > (uint)GgufValueType.Float64)
            {
                throw new InvalidModelException(path, $"metadata '{key}' is an array of unknown value type {rawElement}");
            }

            long count = Count($"metadata '{key}' array length", MinBytes(element));
            if (count > System.Array.MaxLength)
            {
                throw new InvalidModelException(path, $"metadata '{key}' array length {count} is too large");
            }

            int n = (int)count;
            switch (element)
            {
                case GgufValueType.UInt8: return GgufValue.Array(element, Take(n, key).ToArray());
                case GgufValueType.Int8: return GgufValue.Array(element, Numbers<sbyte>(n, key));
                case GgufValueType.UInt16: return GgufValue.Array(element, Numbers<ushort>(n, key));
                case GgufValueType.Int16: return GgufValue.Array(element, Numbers<short>(n, key));
                case GgufValueType.UInt32: return GgufValue.Array(element, Numbers<uint>(n, key));
                case GgufValueType.Int32: return GgufValue.Array(element, Numbers<int>(n, key));
                case GgufValueType.UInt64: return GgufValue.Array(element, Numbers<ulong>(n, key));
                case GgufValueType.Int64: return GgufValue.Array(element, Numbers<long>(n, key));
                case GgufValueType.Float32: return GgufValue.Array(element, Numbers<float>(n, key));
                case GgufValueType.Float64: return GgufValue.Array(element, Numbers<double>(n, key));
                case GgufValueType.Bool:
                {
                    var bools = new bool[n];
                    for (int i = 0; i < n; i++)
                    {
                        bools[i] = Bool(key);
                    }

                    return GgufValue.Array(element, bools);
                }

                case GgufValueType.String:
                {
                    var strings = new string[n];
                    for (int i = 0; i < n; i++)
                    {
                        strings[i] = String(key);
                    }

                    return GgufValue.Array(element, strings);
                }

                default:
                {
                    var nested = new GgufValue[n];
                    for (int i = 0; i < n; i++)
                    {
                        nested[i] = Array(key, depth + 1);
                    }

                    return GgufValue.Array(element, nested);
                }
            }
        }

        // The file is little-endian like every machine .NET runs Halo on, so numbers are copied as they lie.
        private T[] Numbers<T>(int n, string key)
            where T : unmanaged
        {
            long bytes = (long)n * sizeof(T);
            if (bytes > int.MaxValue)
            {
                throw new InvalidModelException(path, $"metadata '{key}': array of {n} elements is too large");
            }

            var result = new T[n];
            Take((int)bytes, key).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()));
            return result;
        }

        private static long MinBytes(GgufValueType t) => t switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.String or GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
            _ => 12, // nested array: element type + count
        };

        private ReadOnlySpan<byte> Take(int n, string field)
        {
            if (n < 0 || n > Remaining)
            {
                throw new InvalidModelException(path, $"truncated while reading {field} at offset {Position} (file is {length} bytes)");
            }

            var span = new ReadOnlySpan<byte>(start + Position, n);
            Position += n;
            return span;
        }
    }
}
