using System.Runtime.InteropServices;
using System.Text.Json;
using Halo.Core.Models;
using Halo.Core.Tokenization;

namespace Halo.Core.Formats;

/// <summary>
/// A Hugging Face BitNet b1.58 checkpoint directory (<c>config.json</c>, one <c>*.safetensors</c> file or shards
/// listed in <c>model.safetensors.index.json</c>, optional <c>tokenizer.json</c>) presented under llama.cpp's GGUF
/// tensor names. Embedding and norms are zero-copy views of the mapped files (BF16/F16/F32 as stored). The seven
/// projections per layer are converted once at load into TQ2_0 blocks (block scale d = 1) in owned native memory,
/// with the per-tensor scale as an F32[1] <c>.scale</c> tensor, whichever form the checkpoint uses:
/// bf16 master weights (ternarized per tensor: s = mean|W|, W_q = clamp(round(W / s), -1, 1)) or packed uint8
/// <c>[out/4, in]</c> with <c>weight_scale</c>, read per <c>quantization_config.linear_class</c> (<c>bitlinear</c>
/// stores 1/mean|W| and divides, <c>autobitlinear</c> multiplies). So the engine sees the same types as for GGUF.
/// </summary>
public sealed unsafe class SafetensorsModel : IModelSource
{
    public const string ConfigFileName = "config.json";
    public const string IndexFileName = "model.safetensors.index.json";
    public const string SingleFileName = "model.safetensors";

    private static readonly (string Hf, string Gguf)[] ProjectionNames =
    [
        ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
    ];

    private static readonly (string Hf, string Gguf)[] NormNames =
    [
        ("input_layernorm", "attn_norm"), ("self_attn.attn_sub_norm", "attn_sub_norm"),
        ("post_attention_layernorm", "ffn_norm"), ("mlp.ffn_sub_norm", "ffn_sub_norm"),
    ];

    private readonly List<SafetensorsFile> _files;
    private readonly List<nint> _owned = [];
    private readonly TensorTable _tensors;
    private readonly List<string> _warnings = [];
    private bool _disposed;

    private SafetensorsModel(string path, List<SafetensorsFile> files, ModelConfig config, TokenizerModel? tokenizer, string linearClass)
    {
        Path = path;
        _tensors = new TensorTable(path);
        _files = files;
        Config = config;
        Tokenizer = tokenizer;
        LinearClass = linearClass;
    }

    public string Path { get; }

    public string Format => "safetensors";

    public ModelConfig Config { get; }

    public TokenizerModel? Tokenizer { get; }

    public IReadOnlyList<TensorView> Tensors => _tensors.All;

    /// <summary>"bf16" (master weights, ternarized at load) or "packed" (uint8 ternary + weight_scale).</summary>
    public string WeightForm { get; private set; } = "bf16";

    /// <summary><c>quantization_config.linear_class</c>: "bitlinear" or "autobitlinear".</summary>
    public string LinearClass { get; }

    /// <summary>Things that loaded but look wrong, e.g. weight scales that seem inverted for the linear class.</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    public static SafetensorsModel Open(string directory)
    {
        string configPath = System.IO.Path.Combine(directory, ConfigFileName);
        if (!File.Exists(configPath))
        {
            throw new InvalidModelException(directory, "config.json is missing: not a Hugging Face checkpoint directory");
        }

        (ModelConfig config, string linearClass, bool? tie) = ReadConfig(configPath, directory);
        List<SafetensorsFile> files = OpenShards(directory, out Dictionary<string, SafetensorsTensor> byName);
        SafetensorsModel? model = null;
        try
        {
            TokenizerModel? tokenizer = File.Exists(System.IO.Path.Combine(directory, TokenizerJson.TokenizerFileName))
                ? TokenizerJson.Load(directory)
                : null;
            bool hasHead = byName.ContainsKey("lm_head.weight") && tie != true;
            if (tie == false && !hasHead)
            {
                throw new InvalidModelException(directory, "config.json sets tie_word_embeddings to false but tensor 'lm_head.weight' is missing");
            }

            model = new SafetensorsModel(directory, files, config with { TiedEmbeddings = !hasHead }, tokenizer, linearClass);
            model.Map(byName, hasHead);
            BitNetTensors.Validate(model);
            return model;
        }
        catch
        {
            if (model is not null)
            {
                model.Dispose();
            }
            else
            {
                files.ForEach(f => f.Dispose());
            }

            throw;
        }
    }

    /// <summary>Reads <c>config.json</c> into a <see cref="ModelConfig"/> (activation from <c>hidden_act</c>).</summary>
    public static (ModelConfig Config, string LinearClass, bool? TieWordEmbeddings) ReadConfig(string configPath, string directory)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(configPath));
            JsonElement c = doc.RootElement;
            int hidden = Int(c, "hidden_size", 1, 1 << 20, configPath);
            int heads = Int(c, "num_attention_heads", 1, hidden, configPath);
            int kvHeads = c.TryGetProperty("num_key_value_heads", out _) ? Int(c, "num_key_value_heads", 1, heads, configPath) : heads;
            if (heads % kvHeads != 0)
            {
                throw new InvalidModelException(configPath, $"num_key_value_heads {kvHeads} must divide num_attention_heads {heads}");
            }

            string act = c.TryGetProperty("hidden_act", out JsonElement a) ? a.GetString() ?? string.Empty : "relu2";
            if (!Activations.TryParse(act, out Activation activation))
            {
                throw new InvalidModelException(configPath, $"hidden_act '{act}' is not silu or relu2");
            }

            string linearClass = "autobitlinear";
            if (c.TryGetProperty("quantization_config", out JsonElement q) && q.ValueKind == JsonValueKind.Object
                && q.TryGetProperty("linear_class", out JsonElement lc))
            {
                linearClass = lc.GetString() ?? linearClass;
                if (linearClass is not ("bitlinear" or "autobitlinear"))
                {
                    throw new InvalidModelException(configPath, $"quantization_config.linear_class '{linearClass}' is not bitlinear or autobitlinear");
                }
            }

            bool? tie = c.TryGetProperty("tie_word_embeddings", out JsonElement t) && t.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? t.GetBoolean()
                : null;
            var config = new ModelConfig
            {
                Architecture = c.TryGetProperty("model_type", out JsonElement mt) ? mt.GetString() ?? "bitnet" : "bitnet",
                Name = System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(directory))),
                HiddenSize = hidden,
                FeedForwardSize = Int(c, "intermediate_size", 1, 1 << 22, configPath),
                LayerCount = Int(c, "num_hidden_layers", 1, 4096, configPath),
                HeadCount = heads,
                KvHeadCount = kvHeads,
                HeadDim = c.TryGetProperty("head_dim", out _) ? Int(c, "head_dim", 1, 1 << 16, configPath) : hidden / heads,
                VocabSize = Int(c, "vocab_size", 1, int.MaxValue, configPath),
                ContextLength = Int(c, "max_position_embeddings", 1, int.MaxValue, configPath),
                RopeTheta = (float)Number(c, "rope_theta", 10000.0),
                RmsNormEps = (float)Number(c, "rms_norm_eps", 1e-6),
                Activation = activation,
                TiedEmbeddings = tie ?? true,
            };
            return (config, linearClass, tie);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidModelException(configPath, $"not a valid config.json: {e.Message}", e);
        }
    }

    public bool TryGetTensor(string name, out TensorView tensor) => _tensors.TryGet(name, out tensor);

    public TensorView GetTensor(string name) => _tensors.Get(name);

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (nint p in _owned)
        {
            NativeMemory.AlignedFree((void*)p);
        }

        _files.ForEach(f => f.Dispose());
    }

    private static List<SafetensorsFile> OpenShards(string directory, out Dictionary<string, SafetensorsTensor> byName)
    {
        string index = System.IO.Path.Combine(directory, IndexFileName);
        var shardNames = new List<string>();
        Dictionary<string, string>? weightMap = null;
        if (File.Exists(index))
        {
            weightMap = ReadWeightMap(index);
            foreach (string shard in weightMap.Values)
            {
                if (!shardNames.Contains(shard))
                {
                    shardNames.Add(shard);
                }
            }
        }
        else if (File.Exists(System.IO.Path.Combine(directory, SingleFileName)))
        {
            shardNames.Add(SingleFileName);
        }
        else
        {
            shardNames.AddRange(Directory.GetFiles(directory, "*.safetensors").Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal)!);
        }

        if (shardNames.Count == 0)
        {
            throw new InvalidModelException(directory, "no *.safetensors file");
        }

        var files = new List<SafetensorsFile>();
        byName = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        try
        {
            foreach (string shard in shardNames)
            {
                string shardPath = System.IO.Path.Combine(directory, shard);
                if (shard.Contains('/') || shard.Contains('\\') || !File.Exists(shardPath))
                {
                    throw new InvalidModelException(index, $"shard '{shard}' is missing");
                }

                SafetensorsFile file = SafetensorsFile.Open(shardPath);
                files.Add(file);
                foreach (SafetensorsTensor t in file.Tensors)
                {
                    if (!byName.TryAdd(t.Name, t))
                    {
                        throw new InvalidModelException(shardPath, $"tensor '{t.Name}' is also in another shard");
                    }
                }
            }

            foreach ((string name, string shard) in weightMap ?? [])
            {
                if (!byName.ContainsKey(name))
                {
                    throw new InvalidModelException(index, $"tensor '{name}' is listed in shard '{shard}' but not found there");
                }
            }

            return files;
        }
        catch
        {
            files.ForEach(f => f.Dispose());
            throw;
        }
    }

    private static Dictionary<string, string> ReadWeightMap(string index)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(index));
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty p in doc.RootElement.GetProperty("weight_map").EnumerateObject())
            {
                map[p.Name] = p.Value.GetString() ?? throw new InvalidModelException(index, $"weight_map entry '{p.Name}' is not a file name");
            }

            return map;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException)
        {
            throw new InvalidModelException(index, $"not a valid safetensors index: {e.Message}", e);
        }
    }

    // Builds the GGUF-named tensor list: views for dense tensors, converted TQ2_0 for projections.
    private void Map(Dictionary<string, SafetensorsTensor> hf, bool hasHead)
    {
        ModelConfig c = Config;
        AddDense(hf, "model.embed_tokens.weight", BitNetTensors.TokenEmbedding);
        AddDense(hf, "model.norm.weight", BitNetTensors.OutputNorm);
        if (hasHead)
        {
            AddDense(hf, "lm_head.weight", BitNetTensors.Output);
        }

        for (int layer = 0; layer < c.LayerCount; layer++)
        {
            foreach ((string hfName, string part) in NormNames)
            {
                AddDense(hf, $"model.layers.{layer}.{hfName}.weight", BitNetTensors.Weight(layer, part));
            }
        }

        var jobs = new List<(int Layer, string Hf, string Part)>();
        for (int layer = 0; layer < c.LayerCount; layer++)
        {
            foreach ((string hfName, string part) in ProjectionNames)
            {
                jobs.Add((layer, $"model.layers.{layer}.{hfName}", part));
            }
        }

        // Check every projection's presence and shape first, in order, so that the error for a bad checkpoint does not
        // depend on which parallel conversion fails first.
        foreach ((int _, string hfName, string part) in jobs)
        {
            long[] shape = BitNetTensors.Shape(c, part);
            CheckProjectionShape(hf, hfName, (int)shape[1], (int)shape[0]);
        }

        var converted = new (nint Blocks, long Bytes, float Scale, bool Packed)[jobs.Count];
        try
        {
            Parallel.For(0, jobs.Count, j =>
            {
                (int layer, string hfName, string part) = jobs[j];
                long[] shape = BitNetTensors.Shape(c, part);
                converted[j] = ConvertProjection(hf, hfName, (int)shape[1], (int)shape[0]);
            });
        }
        catch (AggregateException e) when (e.InnerException is InvalidModelException inner)
        {
            foreach (var done in converted)
            {
                if (done.Blocks != 0)
                {
                    NativeMemory.AlignedFree((void*)done.Blocks);
                }
            }

            throw inner;
        }

        int packed = 0;
        var suspicious = new List<string>();
        for (int j = 0; j < jobs.Count; j++)
        {
            (int layer, string hfName, string part) = jobs[j];
            (nint blocks, long bytes, float scale, bool isPacked) = converted[j];
            _owned.Add(blocks);
            _tensors.Add(new TensorView(BitNetTensors.Weight(layer, part), GgmlType.TQ2_0, BitNetTensors.Shape(c, part), (byte*)blocks, bytes));
            float* s = (float*)NativeMemory.AlignedAlloc(sizeof(float), 64);
            *s = scale;
            _owned.Add((nint)s);
            _tensors.Add(new TensorView(BitNetTensors.Scale(layer, part), GgmlType.F32, [1], (byte*)s, sizeof(float)));
            if (isPacked)
            {
                packed++;
                float stored = LinearClass == "bitlinear" ? 1f / scale : scale;
                if (LinearClass == "bitlinear" ? stored <= 1f : stored >= 1f)
                {
                    suspicious.Add($"{hfName}.weight_scale = {stored:G4}");
                }
            }
        }

        if (packed > 0 && packed < jobs.Count)
        {
            throw new InvalidModelException(Path, $"{packed} of {jobs.Count} projections are packed and the rest are master weights: mixed checkpoints are not supported");
        }

        WeightForm = packed > 0 ? "packed" : "bf16";
        if (suspicious.Count > 0)
        {
            string expected = LinearClass == "bitlinear" ? "bitlinear stores 1/mean|W|, so its scales are >> 1" : "autobitlinear stores mean|W|, so its scales are < 1";
            _warnings.Add($"{suspicious.Count} of {packed} weight_scale values look inverted for linear_class '{LinearClass}' ({expected}); e.g. {suspicious[0]}. "
                + "Check quantization_config.linear_class.");
        }
    }

    private void AddDense(Dictionary<string, SafetensorsTensor> hf, string hfName, string ggufName)
    {
        if (!hf.TryGetValue(hfName, out SafetensorsTensor t))
        {
            throw new InvalidModelException(Path, $"tensor '{hfName}' (GGUF '{ggufName}') is missing");
        }

        GgmlType type = t.DType switch
        {
            "F32" => GgmlType.F32,
            "F16" => GgmlType.F16,
            "BF16" => GgmlType.BF16,
            _ => throw new InvalidModelException(Path, $"tensor '{hfName}' has dtype {t.DType}; expected BF16, F16 or F32"),
        };
        var shape = new long[t.Shape.Length];
        for (int i = 0; i < shape.Length; i++)
        {
            shape[i] = t.Shape[shape.Length - 1 - i];
        }

        _tensors.Add(new TensorView(ggufName, type, shape, t.Data, t.ByteLength));
    }

    private void CheckProjectionShape(Dictionary<string, SafetensorsTensor> hf, string hfName, int outFeatures, int inFeatures)
    {
        string weightName = hfName + ".weight";
        if (!hf.TryGetValue(weightName, out SafetensorsTensor w))
        {
            throw new InvalidModelException(Path, $"tensor '{weightName}' is missing");
        }

        bool packed = w.DType is "U8" or "I8";
        long rows = packed ? outFeatures / 4 : outFeatures;
        if (w.Shape.Length != 2 || w.Shape[0] != rows || w.Shape[1] != inFeatures || (packed && outFeatures % 4 != 0))
        {
            throw new InvalidModelException(Path,
                $"{(packed ? "packed " : string.Empty)}tensor '{weightName}' has shape [{string.Join(", ", w.Shape)}], expected [{rows}, {inFeatures}] from config.json");
        }
    }

    // One projection [out, in] -> TQ2_0 rows with d = 1, plus its per-tensor scale.
    private (nint Blocks, long Bytes, float Scale, bool Packed) ConvertProjection(Dictionary<string, SafetensorsTensor> hf, string hfName, int outFeatures, int inFeatures)
    {
        string weightName = hfName + ".weight";
        SafetensorsTensor w = hf[weightName];
        var ternary = new sbyte[(long)outFeatures * inFeatures];
        float scale;
        bool packed = w.DType is "U8" or "I8";
        if (packed)
        {
            BitNetPacking.Unpack(w.Bytes, outFeatures, inFeatures, ternary);
            foreach (sbyte v in ternary)
            {
                if (v > 1)
                {
                    throw new InvalidModelException(Path, $"packed tensor '{weightName}' holds the code 3, which is not a ternary value");
                }
            }

            float stored = ReadScalar(hf, hfName + ".weight_scale");
            if (!(stored > 0) || float.IsInfinity(stored))
            {
                throw new InvalidModelException(Path, $"tensor '{hfName}.weight_scale' = {stored} is not a positive number");
            }

            scale = LinearClass == "bitlinear" ? 1f / stored : stored;
        }
        else
        {
            float[] master = ToFloats(w, weightName);
            scale = BitNetPacking.Ternarize(master, ternary);
        }

        long bytes = GgmlTypeInfo.RowBytes(GgmlType.TQ2_0, inFeatures) * outFeatures;
        byte* blocks = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        int rowBytes = (int)GgmlTypeInfo.RowBytes(GgmlType.TQ2_0, inFeatures);
        var ones = new float[inFeatures / Tq2_0.BlockSize];
        Array.Fill(ones, 1f);
        for (int r = 0; r < outFeatures; r++)
        {
            Tq2_0.EncodeTernary(ternary.AsSpan(r * inFeatures, inFeatures), ones, new Span<byte>(blocks + ((long)r * rowBytes), rowBytes));
        }

        return ((nint)blocks, bytes, scale, packed);
    }

    private float ReadScalar(Dictionary<string, SafetensorsTensor> hf, string name)
    {
        if (!hf.TryGetValue(name, out SafetensorsTensor t))
        {
            throw new InvalidModelException(Path, $"tensor '{name}' is missing (packed weights need their scale)");
        }

        if (t.ElementCount != 1)
        {
            throw new InvalidModelException(Path, $"tensor '{name}' should hold one value, has shape [{string.Join(", ", t.Shape)}]");
        }

        return ToFloats(t, name)[0];
    }

    private float[] ToFloats(SafetensorsTensor t, string name)
    {
        ReadOnlySpan<byte> b = t.Bytes;
        var result = new float[t.ElementCount];
        switch (t.DType)
        {
            case "F32":
                MemoryMarshal.Cast<byte, float>(b).CopyTo(result);
                break;
            case "F16":
                Fp16.ToFloat(MemoryMarshal.Cast<byte, ushort>(b), result);
                break;
            case "BF16":
                Bf16.ToFloat(MemoryMarshal.Cast<byte, ushort>(b), result);
                break;
            default:
                throw new InvalidModelException(Path, $"tensor '{name}' has dtype {t.DType}; expected BF16, F16 or F32");
        }

        return result;
    }

    private static int Int(JsonElement c, string key, int min, int max, string file)
    {
        if (!c.TryGetProperty(key, out JsonElement v) || !v.TryGetInt64(out long n))
        {
            throw new InvalidModelException(file, $"'{key}' is missing or not an integer");
        }

        return n >= min && n <= max ? (int)n : throw new InvalidModelException(file, $"'{key}' = {n} is out of range [{min}, {max}]");
    }

    private static double Number(JsonElement c, string key, double fallback) =>
        c.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : fallback;
}
