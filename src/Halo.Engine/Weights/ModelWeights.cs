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
/// matrices repacked for the kernels (all in one <see cref="WeightArena"/>), embedding and LM head left in the mapped file.
/// </summary>
public sealed class ModelWeights : IDisposable
{
    private readonly WeightArena _arena; // holds every ternary matrix
    private readonly Task? _storing;     // writing the repack cache, which reads the arena

    private ModelWeights(ModelConfig config, DenseMatrix embedding, DenseMatrix lmHead, float[] outputNorm, LayerWeights[] layers, WeightArena arena, Task? storing)
    {
        _arena = arena;
        _storing = storing;
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

    /// <summary>
    /// Reads the weights of <paramref name="source"/>. With a <paramref name="cache"/>, the repacked ternary
    /// matrices are mapped from it when a valid copy exists; otherwise they are repacked and the copy is written
    /// on a background thread (disposal waits for it).
    /// </summary>
    public static ModelWeights Load(IModelSource source, RepackCache? cache = null)
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

        // Every ternary matrix, checked before anything is repacked, then repacked in one parallel sweep into one arena.
        string[] names = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];
        (int Rows, int Cols)[] shapes = [(qDim, c.HiddenSize), (kvDim, c.HiddenSize), (kvDim, c.HiddenSize), (c.HiddenSize, qDim),
            (c.FeedForwardSize, c.HiddenSize), (c.FeedForwardSize, c.HiddenSize), (c.HiddenSize, c.FeedForwardSize)];
        var tensors = new TernaryTensor[c.LayerCount * names.Length];
        long arenaBytes = 0;
        for (int i = 0; i < c.LayerCount; i++)
        {
            for (int j = 0; j < names.Length; j++)
            {
                TernaryTensor t = TernaryTensor.Find(source, $"blk.{i}.{names[j]}", shapes[j].Rows, shapes[j].Cols);
                tensors[i * names.Length + j] = t;
                arenaBytes += TernaryMatrix.ArenaBytes(t.Rows, t.Cols);
            }
        }

        RepackKey? key = cache is null ? null : RepackCache.Key(source, $"ternary {arenaBytes}");
        WeightArena? cached = key is { } openKey ? cache!.TryOpen(openKey, arenaBytes) : null;
        WeightArena arena = cached ?? new WeightArena(arenaBytes);
        var matrices = new TernaryMatrix[tensors.Length];
        try
        {
            for (int k = 0; k < tensors.Length; k++)
            {
                matrices[k] = TernaryMatrix.Allocate(file, tensors[k].Weight, tensors[k].Scale, arena);
            }

            if (cached is null)
            {
                RepackAll(source, tensors, matrices);
            }
            else
            {
                foreach (TernaryMatrix m in matrices)
                {
                    m.FinishRepack();
                }
            }

            var layers = new LayerWeights[c.LayerCount];
            for (int i = 0; i < c.LayerCount; i++)
            {
                string p = $"blk.{i}.";
                int m = i * names.Length;
                layers[i] = new LayerWeights
                {
                    AttnNorm = Vector(source, p + "attn_norm.weight", c.HiddenSize),
                    Wq = matrices[m],
                    Wk = matrices[m + 1],
                    Wv = matrices[m + 2],
                    AttnSubNorm = Vector(source, p + "attn_sub_norm.weight", qDim),
                    Wo = matrices[m + 3],
                    FfnNorm = Vector(source, p + "ffn_norm.weight", c.HiddenSize),
                    Wgate = matrices[m + 4],
                    Wup = matrices[m + 5],
                    FfnSubNorm = Vector(source, p + "ffn_sub_norm.weight", c.FeedForwardSize),
                    Wdown = matrices[m + 6],
                };
            }

            Task? storing = cached is null && key is { } storeKey ? StoreInBackground(cache!, storeKey, arena) : null;
            return new ModelWeights(c, embedding, lmHead, Vector(source, "output_norm.weight", c.HiddenSize), layers, arena, storing);
        }
        catch
        {
            foreach (TernaryMatrix? m in matrices)
            {
                m?.Dispose();
            }

            arena.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Repacks all matrices in pieces of about 256 KiB of source, spread over the cores; the thread that fills a
    /// matrix's last piece finishes it and drops that tensor's source pages.
    /// </summary>
    private static void RepackAll(IModelSource source, TernaryTensor[] tensors, TernaryMatrix[] matrices)
    {
        const long PieceBytes = 256 << 10;
        var pieces = new List<(int Matrix, int FirstTile, int EndTile)>();
        var remaining = new int[matrices.Length];
        for (int k = 0; k < matrices.Length; k++)
        {
            TernaryMatrix m = matrices[k];
            long tileBytes = Math.Max(1, tensors[k].Weight.ByteLength / m.Tiles);
            int tilesPerPiece = (int)Math.Clamp(PieceBytes / tileBytes, 1, m.Tiles);
            for (int t = 0; t < m.Tiles; t += tilesPerPiece)
            {
                pieces.Add((k, t, Math.Min(m.Tiles, t + tilesPerPiece)));
                remaining[k]++;
            }
        }

        Parallel.For(0, pieces.Count, i =>
        {
            (int k, int first, int end) = pieces[i];
            matrices[k].RepackTiles(tensors[k].Weight, first, end);
            if (Interlocked.Decrement(ref remaining[k]) == 0)
            {
                matrices[k].FinishRepack();
                SourcePages.Release(source, tensors[k].Weight);
            }
        });
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

    /// <summary>
    /// Writes <paramref name="arena"/> to <paramref name="cache"/> on its own thread (I/O trouble is the cache's to
    /// report, so the task does not fault for it). A foreground thread: a process that exits soon after loading
    /// (<c>halo run</c>, a daemon stopped right after start) still finishes the file instead of leaving it half written.
    /// </summary>
    internal static unsafe Task StoreInBackground(RepackCache cache, RepackKey key, WeightArena arena)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writer = new Thread(() =>
        {
            try
            {
                cache.Store(key, arena.Start, arena.Capacity);
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        })
        {
            IsBackground = false,
            Name = "halo repack cache writer",
        };
        writer.Start();
        return done.Task;
    }

    public void Dispose()
    {
        _storing?.Wait();
        foreach (LayerWeights l in Layers)
        {
            l.Dispose();
        }

        _arena.Dispose();
    }
}
