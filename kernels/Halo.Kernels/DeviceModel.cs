using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Engine.Weights;
using Halo.Kernels.Layout;
using ILGPU;
using ILGPU.Runtime;

namespace Halo.Kernels;

/// <summary>The ternary matrices and norms of one layer, on the device.</summary>
internal sealed class DeviceLayer
{
    public required MemoryBuffer1D<float, Stride1D.Dense> AttnNorm { get; init; }     // (d)
    public required DeviceTernaryMatrix Wqkv { get; init; }                          // (heads*head_dim + 2 kv_heads*head_dim, d): q, k, v stacked
    public required MemoryBuffer1D<float, Stride1D.Dense> AttnSubNorm { get; init; }  // (heads*head_dim)
    public required DeviceTernaryMatrix Wo { get; init; }                            // (d, heads*head_dim)
    public required MemoryBuffer1D<float, Stride1D.Dense> FfnNorm { get; init; }      // (d)
    public required DeviceTernaryMatrix WgateUp { get; init; }                       // (2 ffn, d): gate, up stacked
    public required MemoryBuffer1D<float, Stride1D.Dense> FfnSubNorm { get; init; }   // (ffn)
    public required DeviceTernaryMatrix Wdown { get; init; }                         // (d, ffn)
}

/// <summary>
/// Every weight of the model uploaded once at load, in the layouts the kernels read (<see cref="TernaryLayout"/>,
/// <see cref="HalfTable"/>); the host copies are dropped right after each upload. Tensor names are llama.cpp's.
/// </summary>
internal sealed class DeviceModel : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    public DeviceModel(Accelerator accelerator, IModelSource source)
    {
        ModelConfig c = source.Config;
        string file = source.Path;
        int qDim = c.HeadCount * c.HeadDim, kvDim = c.KvHeadCount * c.HeadDim;
        try
        {
            Embedding = Table(accelerator, source, "token_embd.weight");
            LmHead = source.TryGetTensor("output.weight", out _)
                ? Table(accelerator, source, "output.weight")
                : Embedding;
            OutputNorm = Vector(accelerator, source, "output_norm.weight", c.HiddenSize);
            Layers = new DeviceLayer[c.LayerCount];
            for (int i = 0; i < c.LayerCount; i++)
            {
                string p = $"blk.{i}.";
                Layers[i] = new DeviceLayer
                {
                    AttnNorm = Vector(accelerator, source, p + "attn_norm.weight", c.HiddenSize),
                    Wqkv = Ternary(accelerator, source, c.HiddenSize, (p + "attn_q", qDim), (p + "attn_k", kvDim), (p + "attn_v", kvDim)),
                    AttnSubNorm = Vector(accelerator, source, p + "attn_sub_norm.weight", qDim),
                    Wo = Ternary(accelerator, source, qDim, (p + "attn_output", c.HiddenSize)),
                    FfnNorm = Vector(accelerator, source, p + "ffn_norm.weight", c.HiddenSize),
                    WgateUp = Ternary(accelerator, source, c.HiddenSize, (p + "ffn_gate", c.FeedForwardSize), (p + "ffn_up", c.FeedForwardSize)),
                    FfnSubNorm = Vector(accelerator, source, p + "ffn_sub_norm.weight", c.FeedForwardSize),
                    Wdown = Ternary(accelerator, source, c.FeedForwardSize, (p + "ffn_down", c.HiddenSize)),
                };
            }

            long vocabRows = Embedding.Length * 2 / c.HiddenSize;
            long headRows = LmHead.Length * 2 / c.HiddenSize;
            if (vocabRows < c.VocabSize || headRows < c.VocabSize)
            {
                throw new InvalidModelException(file, $"token_embd.weight/output.weight have {Math.Min(vocabRows, headRows)} rows, fewer than the vocabulary ({c.VocabSize})");
            }

            void CheckTable(string name)
            {
                if (source.TryGetTensor(name, out TensorView t) && t.Shape[0] != c.HiddenSize)
                {
                    throw new InvalidModelException(file, $"tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{c.HiddenSize}, vocab]");
                }
            }

            CheckTable("token_embd.weight");
            CheckTable("output.weight");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public MemoryBuffer1D<uint, Stride1D.Dense> Embedding { get; }   // (vocab, d / 2) F16 pairs

    public MemoryBuffer1D<uint, Stride1D.Dense> LmHead { get; }      // (vocab, d / 2): the embedding when tied

    public MemoryBuffer1D<float, Stride1D.Dense> OutputNorm { get; } // (d)

    public DeviceLayer[] Layers { get; }

    public long Bytes
    {
        get
        {
            long bytes = 0;
            foreach (IDisposable owned in _owned)
            {
                bytes += owned switch
                {
                    MemoryBuffer buffer => buffer.LengthInBytes,
                    DeviceTernaryMatrix matrix => matrix.Bytes,
                    _ => 0,
                };
            }

            return bytes;
        }
    }

    private MemoryBuffer1D<uint, Stride1D.Dense> Table(Accelerator accelerator, IModelSource source, string name)
    {
        ReadOnlySpan<uint> words = HalfTable.FromTensor(source.GetTensor(name), source.Path);
        MemoryBuffer1D<uint, Stride1D.Dense> buffer = Own(accelerator.Allocate1D<uint>(words.Length));
        ((ArrayView<uint>)buffer.View).CopyFromCPU(words);
        return buffer;
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Vector(Accelerator accelerator, IModelSource source, string name, int length)
    {
        TensorView t = source.GetTensor(name);
        if (t.ElementCount != length || t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
        {
            throw new InvalidModelException(source.Path, $"tensor '{name}' must be an F32/F16/BF16 vector of {length}, is {t.Type} [{string.Join(", ", t.Shape)}]");
        }

        var values = new float[length];
        ReadOnlySpan<byte> bytes = t.Bytes;
        for (int i = 0; i < length; i++)
        {
            values[i] = t.Type switch
            {
                GgmlType.F32 => BitConverter.ToSingle(bytes.Slice(i * 4, 4)),
                GgmlType.F16 => (float)BitConverter.ToHalf(bytes.Slice(i * 2, 2)),
                _ => BitConverter.UInt32BitsToSingle((uint)BitConverter.ToUInt16(bytes.Slice(i * 2, 2)) << 16),
            };
        }

        return Own(accelerator.Allocate1D(values));
    }

    /// <summary>The named matrices of <paramref name="cols"/> columns, stacked by rows in one device allocation.</summary>
    private DeviceTernaryMatrix Ternary(Accelerator accelerator, IModelSource source, int cols, params ReadOnlySpan<(string Prefix, int Rows)> matrices)
    {
        var layouts = new TernaryLayout[matrices.Length];
        var scales = new float[matrices.Length];
        for (int i = 0; i < matrices.Length; i++)
        {
            TernaryTensor t = TernaryTensor.Find(source, matrices[i].Prefix, matrices[i].Rows, cols);
            layouts[i] = TernaryLayout.FromTensor(t.Weight, source.Path);
            scales[i] = t.Scale;
        }

        return Own(new DeviceTernaryMatrix(accelerator, layouts, scales));
    }

    private T Own<T>(T disposable)
        where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    public void Dispose()
    {
        foreach (IDisposable owned in _owned)
        {
            owned.Dispose();
        }

        _owned.Clear();
    }
}
