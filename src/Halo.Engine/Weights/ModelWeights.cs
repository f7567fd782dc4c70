using Halo.Core.Formats;
using Halo.Core.Models;

namespace Halo.Engine.Weights;

/// <summary>The weights of one transformer layer (DESIGN.md section 2); norm vectors are pinned float arrays.</summary>
public sealed class LayerWeights : IDisposable
{
    public required float[] AttnNorm { get; init; }      // (d)
    public required TernaryMatrix Wq { get; init; }      // (heads*head_dim, d)
    public required TernaryMatrix Wk { get; init; }      // (kv_heads*head_dim, d)
    public required TernaryMatrix Wv { get; init; }      // (kv_heads*head_dim, d)
    public required float[] AttnSubNorm { get; init; }   // (heads*head_dim)
    public required TernaryMatrix Wo { get; init; }      // (d, heads*head_dim)
    public required float[] FfnNorm { get; init; }       // (d)
    public required TernaryMatrix Wgate { get; init; }   // (ffn, d)
    public required TernaryMatrix Wup { get; init; }     // (ffn, d)
    public required float[] FfnSubNorm { get; init; }    // (ffn)
    public required TernaryMatrix Wdown { get; init; }   // (d, ffn)

    public void Dispose()
    {
        Wq.Dispose();
        Wk.Dispose();
        Wv.Dispose();
        Wo.Dispose();
        Wgate.Dispose();
        Wup.Dispose();
        Wdown.Dispose();
    }
}

/// <summary>
/// All weights of a BitNet b1.58 model, read from an <see cref="IModelSource"/> by GGUF tensor names: ternary
/// matrices repacked for the kernels, embedding and LM head left in the mapped file.
/// </summary>
public sealed class ModelWeights : IDisposable
{
    private ModelWeights(ModelConfig config, DenseMatrix embedding, DenseMatrix lmHead, float[] outputNorm, LayerWeights[] layers)
    {
        Config = config;
        Embedding = embedding;
        LmHead = lmHead;
        OutputNorm = outputNorm;
        Layers = layers;
    }

    public ModelConfig Config { get; }

    public DenseMatrix Embedding { get; }   // (vocab, d)

    public DenseMatrix LmHead { get; }      // (vocab, d): the embedding itself when tied

    public float[] OutputNorm { get; }      // (d)

    public IReadOnlyList<LayerWeights> Layers { get; }

    public static ModelWeights Load(IModelSource source)
    {
        ModelConfig c = source.Config;
        string file = source.Path;
        Validate(file, c);
        int qDim = c.HeadCount * c.HeadDim, kvDim = c.KvHeadCount * c.HeadDim;

        DenseMatrix embedding = DenseMatrix.FromTensor(file, source.GetTensor("token_embd.weight"), c.HiddenSize);
        DenseMatrix lmHead = source.TryGetTensor("output.weight", out TensorView output)
            ? DenseMatrix.FromTensor(file, output, c.HiddenSize)
            : embedding;
        if (embedding.Rows < c.VocabSize || lmHead.Rows < c.VocabSize)
        {
            throw new InvalidModelException(file, $"token_embd.weight has {embedding.Rows} rows, fewer than the vocabulary ({c.VocabSize})");
        }

        var layers = new LayerWeights[c.LayerCount];
        try
        {
            for (int i = 0; i < c.LayerCount; i++)
            {
                string p = $"blk.{i}.";
                layers[i] = new LayerWeights
                {
                    AttnNorm = Vector(source, p + "attn_norm.weight", c.HiddenSize),
                    Wq = Ternary(source, p + "attn_q", qDim, c.HiddenSize),
                    Wk = Ternary(source, p + "attn_k", kvDim, c.HiddenSize),
                    Wv = Ternary(source, p + "attn_v", kvDim, c.HiddenSize),
                    AttnSubNorm = Vector(source, p + "attn_sub_norm.weight", qDim),
                    Wo = Ternary(source, p + "attn_output", c.HiddenSize, qDim),
                    FfnNorm = Vector(source, p + "ffn_norm.weight", c.HiddenSize),
                    Wgate = Ternary(source, p + "ffn_gate", c.FeedForwardSize, c.HiddenSize),
                    Wup = Ternary(source, p + "ffn_up", c.FeedForwardSize, c.HiddenSize),
                    FfnSubNorm = Vector(source, p + "ffn_sub_norm.weight", c.FeedForwardSize),
                    Wdown = Ternary(source, p + "ffn_down", c.HiddenSize, c.FeedForwardSize),
                };
            }
        }
        catch
        {
            foreach (LayerWeights? l in layers)
            {
                l?.Dispose();
            }

            throw;
        }

        return new ModelWeights(c, embedding, lmHead, Vector(source, "output_norm.weight", c.HiddenSize), layers);
    }

    private static void Validate(string file, ModelConfig c)
    {
        if (c.HiddenSize <= 0 || c.HiddenSize % TernaryMatrix.BlockSize != 0)
        {
            throw new InvalidModelException(file, $"hidden size {c.HiddenSize} must be a positive multiple of {TernaryMatrix.BlockSize}");
        }

        if (c.FeedForwardSize <= 0 || c.FeedForwardSize % TernaryMatrix.BlockSize != 0)
        {
            throw new InvalidModelException(file, $"feed-forward size {c.FeedForwardSize} must be a positive multiple of {TernaryMatrix.BlockSize}");
        }

        if (c.HeadCount <= 0 || c.KvHeadCount <= 0 || c.HeadCount % c.KvHeadCount != 0)
        {
            throw new InvalidModelException(file, $"head count {c.HeadCount} must be a positive multiple of the KV head count {c.KvHeadCount}");
        }

        if (c.HeadDim <= 0 || c.HeadDim % 2 != 0 || (c.HeadCount * c.HeadDim) % TernaryMatrix.BlockSize != 0)
        {
            throw new InvalidModelException(file, $"head dim {c.HeadDim} must be even and heads x head dim a multiple of {TernaryMatrix.BlockSize}");
        }

        if (c.LayerCount <= 0 || c.VocabSize <= 0 || c.ContextLength <= 0)
        {
            throw new InvalidModelException(file, "layer count, vocabulary size and context length must be positive");
        }
    }

    private static unsafe float[] Vector(IModelSource source, string name, int length)
    {
        TensorView t = source.GetTensor(name);
        if (t.ElementCount != length || t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
        {
            throw new InvalidModelException(source.Path, $"tensor '{name}' must be an F32/F16/BF16 vector of {length}, is {t.Type} [{string.Join(", ", t.Shape)}]");
        }

        float[] v = GC.AllocateUninitializedArray<float>(length, pinned: true);
        for (int i = 0; i < length; i++)
        {
            v[i] = t.Type switch
            {
                GgmlType.F32 => ((float*)t.Data)[i],
                GgmlType.F16 => HalfBits.ToSingle(((ushort*)t.Data)[i]),
                _ => HalfBits.BFloat16ToSingle(((ushort*)t.Data)[i]),
            };
        }

        return v;
    }

    private static unsafe TernaryMatrix Ternary(IModelSource source, string prefix, int rows, int cols)
    {
        TensorView w = source.GetTensor(prefix + ".weight");
        if (w.Shape.Length != 2 || w.Shape[0] != cols || w.Shape[1] != rows)
        {
            throw new InvalidModelException(source.Path, $"tensor '{w.Name}' has shape [{string.Join(", ", w.Shape)}], expected [{cols}, {rows}]");
        }

        float scale = 1f;
        if (source.TryGetTensor(prefix + ".scale", out TensorView s))
        {
            if (s.ElementCount != 1 || s.Type != GgmlType.F32)
            {
                throw new InvalidModelException(source.Path, $"tensor '{s.Name}' must be one F32 value, is {s.Type} [{string.Join(", ", s.Shape)}]");
            }

            scale = *(float*)s.Data;
        }

        TernaryMatrix matrix = TernaryMatrix.FromTensor(source.Path, w, scale);
        SourcePages.Release(source, w);
        return matrix;
    }

    public void Dispose()
    {
        foreach (LayerWeights l in Layers)
        {
            l.Dispose();
        }
    }
}
