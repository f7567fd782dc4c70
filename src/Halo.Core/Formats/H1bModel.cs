using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Halo.Core.Models;
using Halo.Core.Tokenization;

namespace Halo.Core.Formats;

/// <summary>
/// A Halo <c>.h1b</c> file (H1b.md), memory-mapped: config, tokenizer and zero-copy tensors. The preamble, header
/// and vocabulary checksums are always verified; tensor checksums are verified on open unless the caller opts
/// out (then <see cref="VerifyTensors"/> does it later). Any mismatch or inconsistency is an
/// <see cref="InvalidModelException"/> naming the file and the part.
/// </summary>
public sealed unsafe class H1bModel : IModelSource
{
    private readonly MappedFile _file;
    private readonly TensorTable _tensors;
    private readonly ulong[] _hashes;

    private H1bModel(MappedFile file, ModelConfig config, TokenizerModel? tokenizer, TensorView[] tensors, ulong[] hashes)
    {
        _file = file;
        Config = config;
        Tokenizer = tokenizer;
        _tensors = new TensorTable(file.Path, tensors);
        _hashes = hashes;
    }

    public string Path => _file.Path;

    public string Format => "h1b";

    public ModelConfig Config { get; }

    public TokenizerModel? Tokenizer { get; }

    public IReadOnlyList<TensorView> Tensors => _tensors.All;

    public static H1bModel Open(string path, bool verifyTensors = true)
    {
        MappedFile file = MappedFile.Open(path);
        try
        {
            H1bModel model = Parse(file);
            if (verifyTensors)
            {
                model.VerifyTensors();
            }

            BitNetTensors.Validate(model);
            return model;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Recomputes every tensor's XxHash64 (reads all the weights once).</summary>
    public void VerifyTensors()
    {
        int bad = -1;
        Parallel.For(0, _tensors.Count, (i, state) =>
        {
            if (XxHash64.HashToUInt64(_tensors[i].Bytes) != _hashes[i])
            {
                Interlocked.CompareExchange(ref bad, i, -1);
                state.Stop();
            }
        });

        if (bad >= 0)
        {
            throw new InvalidModelException(Path, $"tensor '{_tensors[bad].Name}' fails its checksum: the file is corrupt");
        }
    }

    public bool TryGetTensor(string name, out TensorView tensor) => _tensors.TryGet(name, out tensor);

    public TensorView GetTensor(string name) => _tensors.Get(name);

    public void Dispose() => _file.Dispose();

    private static H1bModel Parse(MappedFile file)
    {
        string path = file.Path;
        long length = file.Length;
        if (length < H1bFormat.PreambleBytes + 8)
        {
            throw new InvalidModelException(path, $"truncated: {length} bytes is shorter than the .h1b preamble");
        }

        ReadOnlySpan<byte> head = file.Span(0, H1bFormat.PreambleBytes);
        if (!H1bFormat.HasMagic(head))
        {
            throw new InvalidModelException(path, H1bFormat.HasLegacyMagic(head)
                ? "this is a 1bit-systems .h1b file (magic H1B\\0), which Halo does not read; convert the original GGUF or safetensors model with `halo convert`"
                : "bad magic: not a Halo .h1b file");
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(head[8..]);
        if (version != H1bFormat.Version)
        {
            throw new InvalidModelException(path, $"unsupported .h1b version {version} (this Halo reads version {H1bFormat.Version})");
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(head[12..]);
        int tableEnd = H1bFormat.PreambleBytes + ((int)Math.Min(count, H1bFormat.MaxSections + 1) * H1bFormat.SectionEntryBytes);
        if (count is 0 or > H1bFormat.MaxSections || tableEnd + 8 > length)
        {
            throw new InvalidModelException(path, $"section count {count} is impossible (1 to {H1bFormat.MaxSections}, within {length} bytes)");
        }

        ReadOnlySpan<byte> preamble = file.Span(0, tableEnd);
        if (XxHash64.HashToUInt64(preamble) != BinaryPrimitives.ReadUInt64LittleEndian(file.Span(tableEnd, 8)))
        {
            throw new InvalidModelException(path, "the preamble (section table) fails its checksum: the file is corrupt");
        }

        (long Offset, long Length)? header = null, vocabulary = null, data = null;
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = preamble.Slice(H1bFormat.PreambleBytes + (i * H1bFormat.SectionEntryBytes), H1bFormat.SectionEntryBytes);
            uint kind = BinaryPrimitives.ReadUInt32LittleEndian(e);
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(e[8..]);
            ulong size = BinaryPrimitives.ReadUInt64LittleEndian(e[16..]);
            ulong hash = BinaryPrimitives.ReadUInt64LittleEndian(e[24..]);
            string name = kind switch
            {
                H1bFormat.HeaderSection => "header",
                H1bFormat.VocabularySection => "vocabulary",
                H1bFormat.TensorDataSection => "tensor data",
                _ => throw new InvalidModelException(path, $"section {i} has unknown kind {kind}"),
            };
            if (offset > (ulong)length || size > (ulong)length - offset)
            {
                throw new InvalidModelException(path, $"the {name} section [{offset}, +{size}) runs past the end of the file ({length} bytes): truncated?");
            }

            var range = ((long)offset, (long)size);
            if (kind != H1bFormat.TensorDataSection)
            {
                if (size > int.MaxValue || XxHash64.HashToUInt64(file.Span((long)offset, (int)size)) != hash)
                {
                    throw new InvalidModelException(path, $"the {name} section fails its checksum: the file is corrupt");
                }
            }

            switch (kind)
            {
                case H1bFormat.HeaderSection: header = range; break;
                case H1bFormat.VocabularySection: vocabulary = range; break;
                default: data = range; break;
            }
        }

        if (header is null || data is null)
        {
            throw new InvalidModelException(path, "the header or tensor data section is missing");
        }

        return ParseHeader(file, header.Value, vocabulary, data.Value);
    }

    private static H1bModel ParseHeader(MappedFile file, (long Offset, long Length) header, (long Offset, long Length)? vocabulary, (long Offset, long Length) data)
    {
        string path = file.Path;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(file.Span(header.Offset, (int)header.Length).ToArray());
            JsonElement root = doc.RootElement;
            ModelConfig config = ReadConfig(root.GetProperty("config"));
            TokenizerModel? tokenizer = null;
            if (root.TryGetProperty("tokenizer", out JsonElement tok))
            {
                if (vocabulary is null)
                {
                    throw new InvalidModelException(path, "the header describes a tokenizer but the vocabulary section is missing");
                }

                tokenizer = ReadTokenizer(path, tok, file.Span(vocabulary.Value.Offset, (int)vocabulary.Value.Length));
            }

            JsonElement list = root.GetProperty("tensors");
            var tensors = new TensorView[list.GetArrayLength()];
            var hashes = new ulong[tensors.Length];
            var names = new HashSet<string>(StringComparer.Ordinal);
            var ranges = new List<(long Begin, long End, string Name)>();
            int i = 0;
            foreach (JsonElement t in list.EnumerateArray())
            {
                (tensors[i], hashes[i]) = ReadTensor(file, t, data);
                if (!names.Add(tensors[i].Name))
                {
                    throw new InvalidModelException(path, $"tensor '{tensors[i].Name}' appears twice");
                }

                long begin = (long)(tensors[i].Data - file.Pointer);
                ranges.Add((begin, begin + tensors[i].ByteLength, tensors[i].Name));
                i++;
            }

            ranges.Sort((a, b) => a.Begin.CompareTo(b.Begin));
            for (int k = 1; k < ranges.Count; k++)
            {
                if (ranges[k].Begin < ranges[k - 1].End)
                {
                    throw new InvalidModelException(path, $"tensor '{ranges[k].Name}' overlaps tensor '{ranges[k - 1].Name}'");
                }
            }

            return new H1bModel(file, config, tokenizer, tensors, hashes);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidModelException(path, $"the header is malformed: {e.Message}", e);
        }
    }

    private static (TensorView, ulong) ReadTensor(MappedFile file, JsonElement t, (long Offset, long Length) data)
    {
        string path = file.Path;
        string name = t.GetProperty("name").GetString() ?? throw new FormatException("tensor name is null");
        string typeName = t.GetProperty("type").GetString() ?? string.Empty;
        var type = (GgmlType)t.GetProperty("type_id").GetUInt32();
        if (!GgmlTypeInfo.IsKnown(type) || GgmlTypeInfo.Name(type) != typeName)
        {
            throw new InvalidModelException(path, $"tensor '{name}' has unknown type '{typeName}' ({(uint)type})");
        }

        string layout = t.GetProperty("layout").GetString() ?? string.Empty;
        if (layout != H1bFormat.GgmlLayout)
        {
            throw new InvalidModelException(path, $"tensor '{name}' has layout '{layout}', which this Halo does not read");
        }

        JsonElement shapeJson = t.GetProperty("shape");
        if (shapeJson.GetArrayLength() is 0 or > GgufFile.MaxDimensions)
        {
            throw new InvalidModelException(path, $"tensor '{name}' has {shapeJson.GetArrayLength()} dimensions");
        }

        var shape = new long[shapeJson.GetArrayLength()];
        for (int d = 0; d < shape.Length; d++)
        {
            shape[d] = shapeJson[d].GetInt64();
        }

        long offset = t.GetProperty("offset").GetInt64();
        long length = t.GetProperty("length").GetInt64();
        if (!GgmlTypeInfo.TryTensorBytes(type, shape, out long expected) || expected != length)
        {
            throw new InvalidModelException(path, $"tensor '{name}' {typeName} [{string.Join(", ", shape)}] does not match its length {length}");
        }

        if (offset % H1bFormat.Alignment != 0 || offset < data.Offset || length > data.Offset + data.Length - offset)
        {
            throw new InvalidModelException(path, $"tensor '{name}' [{offset}, +{length}) is misaligned or outside the tensor data section");
        }

        ulong hash = ulong.Parse(t.GetProperty("xxh64").GetString() ?? string.Empty, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        return (new TensorView(name, type, shape, file.Pointer + offset, length), hash);
    }

    private static ModelConfig ReadConfig(JsonElement c)
    {
        string act = c.GetProperty("activation").GetString() ?? string.Empty;
        if (!Activations.TryParse(act, out Activation activation))
        {
            throw new FormatException($"config.activation '{act}' is not silu or relu2");
        }

        return new ModelConfig
        {
            Architecture = c.GetProperty("architecture").GetString() ?? "bitnet",
            Name = c.GetProperty("name").GetString() ?? string.Empty,
            HiddenSize = c.GetProperty("hidden_size").GetInt32(),
            FeedForwardSize = c.GetProperty("feed_forward_size").GetInt32(),
            LayerCount = c.GetProperty("layer_count").GetInt32(),
            HeadCount = c.GetProperty("head_count").GetInt32(),
            KvHeadCount = c.GetProperty("kv_head_count").GetInt32(),
            HeadDim = c.GetProperty("head_dim").GetInt32(),
            VocabSize = c.GetProperty("vocab_size").GetInt32(),
            ContextLength = c.GetProperty("context_length").GetInt32(),
            RopeTheta = c.GetProperty("rope_theta").GetSingle(),
            RmsNormEps = c.GetProperty("rms_norm_eps").GetSingle(),
            Activation = activation,
            TiedEmbeddings = c.GetProperty("tied_embeddings").GetBoolean(),
            RandomWeights = c.GetProperty("random_weights").GetBoolean(),
        };
    }

    private static TokenizerModel ReadTokenizer(string path, JsonElement t, ReadOnlySpan<byte> vocabulary)
    {
        var reader = new VocabularyReader(path, vocabulary);
        string[] tokens = reader.Strings("tokens");
        uint typeCount = reader.U32("token type count");
        if (typeCount != 0 && typeCount != tokens.Length)
        {
            throw new InvalidModelException(path, $"vocabulary has {typeCount} token types for {tokens.Length} tokens");
        }

        int[]? types = typeCount == 0 ? null : new int[typeCount];
        for (int i = 0; i < typeCount; i++)
        {
            types![i] = (int)reader.U32("token type");
        }

        string[] merges = reader.Strings("merges");
        int Id(string key)
        {
            int id = t.GetProperty(key).GetInt32();
            return id >= -1 && id < tokens.Length ? id : throw new InvalidModelException(path, $"tokenizer.{key} = {id} is not a token id");
        }

        return new TokenizerModel
        {
            Model = t.GetProperty("model").GetString() ?? "gpt2",
            PreTokenizer = t.GetProperty("pre").GetString() ?? "default",
            Tokens = tokens,
            Merges = merges,
            TokenTypes = types,
            BosId = Id("bos_id"),
            EosId = Id("eos_id"),
            EotId = Id("eot_id"),
            PadId = Id("pad_id"),
            AddBos = t.GetProperty("add_bos").GetBoolean(),
            ChatTemplate = t.TryGetProperty("chat_template", out JsonElement ct) ? ct.GetString() : null,
        };
    }

    /// <summary>Bounded reader of the vocabulary section (counts are checked against the bytes left).</summary>
    private ref struct VocabularyReader(string path, ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _position;

        public uint U32(string field)
        {
            if (_position + 4 > _bytes.Length)
            {
                throw new InvalidModelException(path, $"vocabulary section truncated while reading {field}");
            }

            uint v = BinaryPrimitives.ReadUInt32LittleEndian(_bytes[_position..]);
            _position += 4;
            return v;
        }

        public string[] Strings(string field)
        {
            uint n = U32(field);
            if (n > (uint)(_bytes.Length - _position) / 4)
            {
                throw new InvalidModelException(path, $"vocabulary {field} count {n} is impossible for the section size");
            }

            var result = new string[n];
            for (int i = 0; i < n; i++)
            {
                uint len = U32(field);
                if (len > (uint)(_bytes.Length - _position))
                {
                    throw new InvalidModelException(path, $"vocabulary {field}[{i}] runs past the end of the section");
                }

                result[i] = Encoding.UTF8.GetString(_bytes.Slice(_position, (int)len));
                _position += (int)len;
            }

            return result;
        }
    }
}
