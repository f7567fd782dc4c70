using System.Runtime.InteropServices;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Core.Tokenization;

namespace Halo.Engine.Tests.Reference;

/// <summary>
/// A small random BitNet model held in native memory, with tensors encoded exactly as GGUF stores them
/// (TQ2_0/TQ1_0 blocks, F16 embedding, F32 norms and scales): shapes and options the file-based synthetic
/// presets do not cover (untied head, relu2, GQA ratios).
/// </summary>
internal sealed unsafe class TestModelSource : IModelSource
{
    private readonly List<TensorView> _tensors = [];
    private readonly List<nint> _allocations = [];
    private readonly Random _rng;
    private readonly bool _uniformBlockScales;

    /// <param name="uniformBlockScales">One scale for every block of a tensor, as BitNet checkpoints have (the
    /// kernels' row-scaled integer path); otherwise each block draws its own.</param>
    public TestModelSource(ModelConfig config, GgmlType ternaryType = GgmlType.TQ2_0, int seed = 1, bool untiedHead = false, bool withScales = true, bool uniformBlockScales = false)
    {
        Config = config;
        _uniformBlockScales = uniformBlockScales;
        _rng = new Random(seed);
        int d = config.HiddenSize, qDim = config.HeadCount * config.HeadDim, kvDim = config.KvHeadCount * config.HeadDim, ffn = config.FeedForwardSize;
        AddF16("token_embd.weight", d, config.VocabSize, 5f / MathF.Sqrt(d) * MathF.Sqrt(3f));
        for (int l = 0; l < config.LayerCount; l++)
        {
            string p = $"blk.{l}.";
            AddF32(p + "attn_norm.weight", d);
            AddTernary(p + "attn_q", d, qDim, ternaryType, withScales, 1f);
            AddTernary(p + "attn_k", d, kvDim, ternaryType, withScales, 1f);
            AddTernary(p + "attn_v", d, kvDim, ternaryType, withScales, 1f);
            AddF32(p + "attn_sub_norm.weight", qDim);
            AddTernary(p + "attn_output", qDim, d, ternaryType, withScales, 0.5f);
            AddF32(p + "ffn_norm.weight", d);
            AddTernary(p + "ffn_gate", d, ffn, ternaryType, withScales, 1f);
            AddTernary(p + "ffn_up", d, ffn, ternaryType, withScales, 1f);
            AddF32(p + "ffn_sub_norm.weight", ffn);
            AddTernary(p + "ffn_down", ffn, d, ternaryType, withScales, 0.5f);
        }

        AddF32("output_norm.weight", d);
        if (untiedHead)
        {
            AddF16("output.weight", d, config.VocabSize, 5f / MathF.Sqrt(d) * MathF.Sqrt(3f));
        }
    }

    public static ModelConfig TinyConfig(Activation activation = Activation.Silu, int kvHeads = 2) => new()
    {
        Architecture = "bitnet",
        Name = "test",
        HiddenSize = 256,
        FeedForwardSize = 512,
        LayerCount = 2,
        HeadCount = 4,
        KvHeadCount = kvHeads,
        HeadDim = 64,
        VocabSize = 300,
        ContextLength = 96,
        RopeTheta = 10000f,
        RmsNormEps = 1e-5f,
        Activation = activation,
        TiedEmbeddings = true,
        RandomWeights = true,
    };

    public string Path => "test-model";

    public string Format => "memory";

    public ModelConfig Config { get; }

    public TokenizerModel? Tokenizer => null;

    public IReadOnlyList<TensorView> Tensors => _tensors;

    public bool TryGetTensor(string name, out TensorView tensor)
    {
        foreach (TensorView t in _tensors)
        {
            if (t.Name == name)
            {
                tensor = t;
                return true;
            }
        }

        tensor = default;
        return false;
    }

    public TensorView GetTensor(string name) =>
        TryGetTensor(name, out TensorView t) ? t : throw new InvalidModelException(Path, $"tensor '{name}' is missing");

    /// <summary>Encodes ternary values [rows, cols] as TQ2_0 blocks (66 bytes per 256: qs[64], f16 d).</summary>
    public static byte[] EncodeTq2(ReadOnlySpan<sbyte> values, ReadOnlySpan<float> scales)
    {
        int blocks = values.Length / 256;
        var bytes = new byte[blocks * 66];
        for (int b = 0; b < blocks; b++)
        {
            for (int e = 0; e < 256; e++)
            {
                int half = e / 128, l = e % 128 / 32, m = e % 32;
                bytes[b * 66 + half * 32 + m] |= (byte)((values[b * 256 + e] + 1) << (2 * l));
            }

            BitConverter.TryWriteBytes(bytes.AsSpan(b * 66 + 64), (Half)scales[b]);
        }

        return bytes;
    }

    /// <summary>Encodes ternary values as TQ1_0 blocks (54 bytes per 256: qs[48] of 5 trits, qh[4] of 4, f16 d).</summary>
    public static byte[] EncodeTq1(ReadOnlySpan<sbyte> values, ReadOnlySpan<float> scales)
    {
        int blocks = values.Length / 256;
        var bytes = new byte[blocks * 54];
        for (int b = 0; b < blocks; b++)
        {
            ReadOnlySpan<sbyte> v = values.Slice(b * 256, 256);
            for (int m = 0; m < 32; m++)
            {
                bytes[b * 54 + m] = Pack(v, [m, 32 + m, 64 + m, 96 + m, 128 + m]);
            }

            for (int m = 0; m < 16; m++)
            {
                bytes[b * 54 + 32 + m] = Pack(v, [160 + m, 176 + m, 192 + m, 208 + m, 224 + m]);
            }

            for (int j = 0; j < 4; j++)
            {
                bytes[b * 54 + 48 + j] = Pack(v, [240 + j, 244 + j, 248 + j, 252 + j]);
            }

            BitConverter.TryWriteBytes(bytes.AsSpan(b * 54 + 52), (Half)scales[b]);
        }

        return bytes;
    }

    // Trits x_0..x_4 (x_0 most significant; a 4-trit group gets a trailing 0) as ceil(value * 256 / 243).
    private static byte Pack(ReadOnlySpan<sbyte> v, ReadOnlySpan<int> indices)
    {
        int q = 0;
        for (int n = 0; n < 5; n++)
        {
            q = q * 3 + (n < indices.Length ? v[indices[n]] + 1 : 0);
        }

        return (byte)((q * 256 + 242) / 243);
    }

    private void AddTernary(string prefix, int cols, int rows, GgmlType type, bool withScale, float gain)
    {
        var values = new sbyte[rows * cols];
        var scales = new float[rows * cols / 256];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(_rng.Next(3) - 1);
        }

        for (int i = 0; i < scales.Length; i++)
        {
            scales[i] = _uniformBlockScales && i > 0 ? scales[0] : 0.75f + 0.5f * (float)_rng.NextDouble();
        }

        byte[] bytes = type == GgmlType.TQ1_0 ? EncodeTq1(values, scales) : EncodeTq2(values, scales);
        Add(prefix + ".weight", type, [cols, rows], bytes);
        float s = gain / MathF.Sqrt(2f / 3f * cols);
        if (withScale)
        {
            Add(prefix + ".scale", GgmlType.F32, [1], BitConverter.GetBytes(s));
        }
    }

    private void AddF32(string name, int n)
    {
        var bytes = new byte[n * 4];
        for (int i = 0; i < n; i++)
        {
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), 1f + 0.1f * (2f * (float)_rng.NextDouble() - 1f));
        }

        Add(name, GgmlType.F32, [n], bytes);
    }

    private void AddF16(string name, int cols, int rows, float amplitude)
    {
        var bytes = new byte[cols * rows * 2];
        for (int i = 0; i < cols * rows; i++)
        {
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), (Half)(amplitude * (2f * (float)_rng.NextDouble() - 1f)));
        }

        Add(name, GgmlType.F16, [cols, rows], bytes);
    }

    private void Add(string name, GgmlType type, long[] shape, byte[] bytes)
    {
        byte* p = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        _allocations.Add((nint)p);
        _tensors.Add(new TensorView(name, type, shape, p, bytes.Length));
    }

    public void Dispose()
    {
        foreach (nint p in _allocations)
        {
            NativeMemory.Free((void*)p);
        }

        _allocations.Clear();
    }
}
