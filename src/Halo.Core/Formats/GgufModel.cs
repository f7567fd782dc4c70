using System.Runtime.InteropServices;
using Halo.Core.Models;
using Halo.Core.Tokenization;

namespace Halo.Core.Formats;

/// <summary>
/// A BitNet model in a GGUF file: the mapped <see cref="GgufFile"/>, the <see cref="ModelConfig"/> built from its
/// <c>{arch}.*</c> keys, its tokenizer, and zero-copy tensors checked against the config on open. Tensors of
/// bitnet.cpp's I2_S type are the exception: they are converted once at load into TQ2_0 (block scale 1, owned
/// memory) with their per-tensor scale as the <c>.scale</c> tensor, so the engine sees one ternary type.
/// </summary>
public sealed unsafe class GgufModel : IModelSource
{
    private readonly TensorTable _tensors;
    private readonly List<nint> _owned = [];
    private bool _disposed;

    public const string SyntheticKey = "halo.synthetic";
    public const string ActivationKeySuffix = ".hidden_activation";

    private GgufModel(GgufFile file, ModelConfig config, TokenizerModel? tokenizer)
    {
        File = file;
        Config = config;
        Tokenizer = tokenizer;
        _tensors = new TensorTable(file.Path, file.Tensors);
    }

    public GgufFile File { get; }

    public string Path => File.Path;

    public string Format => "gguf";

    public ModelConfig Config { get; }

    public TokenizerModel? Tokenizer { get; }

    public IReadOnlyList<TensorView> Tensors => _tensors.All;

    /// <summary>Opens, parses and validates a GGUF BitNet model; any defect is an <see cref="InvalidModelException"/>.</summary>
    public static GgufModel Open(string path)
    {
        GgufFile file = GgufFile.Open(path);
        try
        {
            TokenizerModel? tokenizer = GgufTokenizer.Read(file.Metadata);
            ModelConfig config = ReadConfig(file, tokenizer);
            var model = new GgufModel(file, config, tokenizer);
            try
            {
                model.ConvertI2S();
                BitNetTensors.Validate(model);
            }
            catch
            {
                model.Dispose();
                throw;
            }

            return model;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Builds the config from <c>general.architecture</c> and the <c>{arch}.*</c> hyper-parameters, with the
    /// activation rule of DESIGN.md section 2 (<c>{arch}.hidden_activation</c>, else the architecture's default).
    /// </summary>
    public static ModelConfig ReadConfig(GgufFile file, TokenizerModel? tokenizer)
    {
        GgufMetadata m = file.Metadata;
        string arch = m.GetString("general.architecture");
        int hidden = m.GetInt32InRange($"{arch}.embedding_length", 1, 1 << 20);
        int heads = m.GetInt32InRange($"{arch}.attention.head_count", 1, hidden);
        int kvHeads = (int)(m.GetInt64OrNull($"{arch}.attention.head_count_kv") ?? heads);
        if (kvHeads < 1 || kvHeads > heads || heads % kvHeads != 0)
        {
            throw new InvalidModelException(file.Path, $"metadata '{arch}.attention.head_count_kv' = {kvHeads} must divide head_count {heads}");
        }

        int headDim = m.Contains($"{arch}.attention.key_length")
            ? m.GetInt32InRange($"{arch}.attention.key_length", 1, 1 << 16)
            : hidden % heads == 0 ? hidden / heads
            : throw new InvalidModelException(file.Path, $"metadata '{arch}.embedding_length' {hidden} is not a multiple of head_count {heads}");

        int vocab = m.Contains($"{arch}.vocab_size")
            ? m.GetInt32InRange($"{arch}.vocab_size", 1, int.MaxValue)
            : tokenizer?.Tokens.Count
              ?? (file.TryGetTensor(BitNetTensors.TokenEmbedding, out TensorView e) && e.Shape.Length == 2 && e.Shape[1] <= int.MaxValue
                  ? (int)e.Shape[1]
                  : throw new InvalidModelException(file.Path, $"the vocabulary size is unknown: no '{arch}.vocab_size', tokenizer or token_embd"));

        Activation activation = Activations.DefaultForGgufArchitecture(arch);
        string? activationName = m.GetStringOrNull(arch + ActivationKeySuffix);
        if (activationName is not null && !Activations.TryParse(activationName, out activation))
        {
            throw new InvalidModelException(file.Path, $"metadata '{arch}{ActivationKeySuffix}' = '{activationName}' is not silu or relu2");
        }

        return new ModelConfig
        {
            Architecture = arch,
            Name = m.GetStringOrNull("general.name") ?? System.IO.Path.GetFileNameWithoutExtension(file.Path),
            HiddenSize = hidden,
            FeedForwardSize = m.GetInt32InRange($"{arch}.feed_forward_length", 1, 1 << 22),
            LayerCount = m.GetInt32InRange($"{arch}.block_count", 1, 4096),
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            VocabSize = vocab,
            ContextLength = m.GetInt32InRange($"{arch}.context_length", 1, int.MaxValue),
            RopeTheta = (float)(m.GetDoubleOrNull($"{arch}.rope.freq_base") ?? 10000.0),
            RmsNormEps = (float)(m.GetDoubleOrNull($"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-5),
            Activation = activation,
            TiedEmbeddings = !file.TryGetTensor(BitNetTensors.Output, out _),
            RandomWeights = m.GetBoolOrNull(SyntheticKey) ?? false,
        };
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

        File.Dispose();
    }

    // I2_S [in, out] -> TQ2_0 rows (d = 1) and scale = I2_S scale x the file's own .scale (when present).
    private void ConvertI2S()
    {
        for (int i = 0; i < _tensors.Count; i++)
        {
            TensorView t = _tensors[i];
            if (t.Type != GgmlType.I2_S)
            {
                continue;
            }

            if (t.Shape.Length != 2 || t.Shape[0] % Tq2_0.BlockSize != 0 || t.ElementCount > int.MaxValue || !t.Name.EndsWith(".weight", StringComparison.Ordinal))
            {
                throw new InvalidModelException(Path, $"I2_S tensor '{t.Name}' [{string.Join(", ", t.Shape)}] must be a 2-D weight with rows of whole 256-blocks");
            }

            int n = (int)t.ElementCount;
            var ternary = new sbyte[n];
            I2S.Decode(t.Bytes, ternary);
            float scale = I2S.Scale(t.Bytes, n);
            long bytes = GgmlTypeInfo.RowBytes(GgmlType.TQ2_0, t.Shape[0]) * t.Shape[1];
            byte* blocks = Own(bytes);
            var ones = new float[n / Tq2_0.BlockSize];
            Array.Fill(ones, 1f);
            Tq2_0.EncodeTernary(ternary, ones, new Span<byte>(blocks, (int)bytes));
            _tensors[i] = new TensorView(t.Name, GgmlType.TQ2_0, t.Shape, blocks, bytes);

            string scaleName = t.Name[..^".weight".Length] + ".scale";
            if (_tensors.TryGet(scaleName, out TensorView fileScale) && fileScale.Type == GgmlType.F32 && fileScale.ElementCount == 1)
            {
                scale *= *(float*)fileScale.Data;
            }

            float* scaleData = (float*)Own(sizeof(float));
            *scaleData = scale;
            _tensors.Set(new TensorView(scaleName, GgmlType.F32, [1], (byte*)scaleData, sizeof(float)));
        }
    }

    private byte* Own(long bytes)
    {
        byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        _owned.Add((nint)p);
        return p;
    }
}
