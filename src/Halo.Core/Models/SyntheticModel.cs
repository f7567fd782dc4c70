using System.Buffers.Binary;
using System.Globalization;
using Halo.Core.Formats;
using Halo.Core.Tokenization;

namespace Halo.Core.Models;

/// <summary>
/// Makes random-weight BitNet b1.58 models with real shapes as GGUF files that llama.cpp's <c>bitnet</c>
/// architecture loads: F16 <c>token_embd</c> (tied LM head), F32 norms, TQ2_0/TQ1_0 projections with per-tensor
/// F32[1] <c>.scale</c> tensors, and full tokenizer metadata. The file is a pure function of the spec (same seed,
/// same bytes) and is labelled as random weights (<c>general.name</c>, <c>general.description</c>,
/// <c>halo.synthetic = true</c>).
/// <para>
/// The weights are drawn so that a forward pass stays in a sane range: norm weights in [0.9, 1.1]; ternary
/// values uniform over {-1, 0, +1} (1/3 zeros) with per-block scales d in [0.75, 1.25]; each projection's
/// <c>.scale</c> ~ gain / sqrt(2/3 fan_in E[d^2]) so that outputs have about unit RMS; embeddings uniform with
/// standard deviation 5 / sqrt(d) so that logits have a standard deviation of about 5 and the top token usually
/// leads clearly. The residual branches (attn_output, ffn_down) get gain 20 / sqrt(2 layers), so the residual
/// stream ends with RMS ~20 and the input token's own embedding (RMS 5 / sqrt(d)) does not dominate the tied
/// LM head: otherwise every prompt would just echo its last token. Control tokens (specials, reserved padding)
/// get embeddings 0.3 times as large so that greedy decoding mostly produces text rather than control tokens.
/// </para>
/// <para>
/// The bytes are pinned: Halo.Engine.Tests compares the engine with llama.cpp outputs recorded for these exact
/// files (their SHA-256 is in the fixtures), so a change here must come with regenerated fixtures.
/// </para>
/// </summary>
public static class SyntheticModel
{
    public const string SeedKey = "halo.synthetic.seed";
    public const string PresetKey = "halo.synthetic.preset";

    private const int RowsPerChunk = 64;
    private const int ChunksPerBatch = 32;
    private const float LogitStdDev = 5f;
    private const float ResidualRms = 20f;
    private const int ControlTokenType = 3;
    private const float ControlTokenDamping = 0.3f;

    // A few English merges so that the byte-level vocabulary exercises BPE merging.
    private static readonly (string Left, string Right)[] ByteMerges =
        [(" ", "t"), ("h", "e"), ("i", "n"), ("r", "e"), ("o", "n"), (" ", "a"), ("e", "r"), (" t", "he"), ("a", "t"), (" ", "s"), ("e", "n"), ("o", "r")];

    /// <summary>
    /// Writes the model to <paramref name="path"/> through a temporary file renamed at the end, so a full disk or a
    /// killed process never leaves a half-written model under the final name. Returns the model's config.
    /// </summary>
    public static ModelConfig Write(SyntheticModelSpec spec, string path)
    {
        string full = Path.GetFullPath(path);
        string temp = full + ".partial";
        try
        {
            ModelConfig config;
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                config = Write(spec, stream);
            }

            File.Move(temp, full, overwrite: true);
            return config;
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Streams the GGUF to <paramref name="output"/> and returns the model's config.</summary>
    public static ModelConfig Write(SyntheticModelSpec spec, Stream output)
    {
        TokenizerModel tokenizer = PadVocabulary(
            spec.TokenizerDirectory is null ? ByteLevelVocabulary.Create(ByteMerges) : TokenizerJson.Load(spec.TokenizerDirectory),
            spec.Config.VocabSize);
        ModelConfig c = spec.Config with { VocabSize = tokenizer.Tokens.Count, TiedEmbeddings = true, RandomWeights = true };
        Check(c, spec.WeightType);

        var w = new GgufWriter(output);
        WriteMetadata(w.Metadata, c, spec, tokenizer);
        var fills = new List<Action<GgufWriter>>();
        Plan(w, fills, c, spec, tokenizer);
        w.WriteHeader();
        foreach (Action<GgufWriter> fill in fills)
        {
            fill(w);
        }

        w.Finish();
        return c;
    }

    private static void Check(ModelConfig c, GgmlType type)
    {
        if (type is not (GgmlType.TQ2_0 or GgmlType.TQ1_0))
        {
            throw new ArgumentException($"synthetic weights are TQ2_0 or TQ1_0, not {type}");
        }

        if (c.HeadCount * c.HeadDim != c.HiddenSize)
        {
            throw new ArgumentException("llama.cpp's bitnet graph needs head_count * head_dim == hidden size");
        }

        if (c.HiddenSize % 256 != 0 || c.FeedForwardSize % 256 != 0)
        {
            throw new ArgumentException("hidden and feed-forward sizes must be multiples of 256 (the ternary block)");
        }

        if (c.HeadCount % c.KvHeadCount != 0 || c.HeadDim % 2 != 0)
        {
            throw new ArgumentException("head_count must be a multiple of kv_head_count and head_dim even");
        }
    }

    private static TokenizerModel PadVocabulary(TokenizerModel t, int minimumSize)
    {
        if (t.Tokens.Count >= minimumSize)
        {
            return t;
        }

        var tokens = new List<string>(t.Tokens);
        var types = new List<int>(t.TokenTypes ?? Enumerable.Repeat(1, t.Tokens.Count));
        for (int i = 0; tokens.Count < minimumSize; i++)
        {
            tokens.Add($"<|reserved_special_token_{i}|>");
            types.Add(ControlTokenType);
        }

        return t with { Tokens = tokens, TokenTypes = types };
    }

    private static void WriteMetadata(GgufMetadata m, ModelConfig c, SyntheticModelSpec spec, TokenizerModel tokenizer)
    {
        string arch = c.Architecture;
        string type = GgmlTypeInfo.Name(spec.WeightType);
        m.Set("general.architecture", arch);
        m.Set("general.name", $"{c.Name} (random weights)");
        m.Set("general.description", string.Create(CultureInfo.InvariantCulture,
            $"Synthetic BitNet b1.58 model with RANDOM weights (preset {spec.Preset}, {type}, seed {spec.Seed}), made by `halo models synth` for tests and benchmarks. It is not trained: its output is noise."));
        m.Set("general.file_type", spec.WeightType == GgmlType.TQ1_0 ? 36u : 37u);
        m.Set("general.quantization_version", 2u);
        m.Set(GgufModel.SyntheticKey, true);
        m.Set(SeedKey, GgufValue.UInt64(spec.Seed));
        m.Set(PresetKey, spec.Preset);
        m.Set($"{arch}.vocab_size", (uint)c.VocabSize);
        m.Set($"{arch}.context_length", (uint)c.ContextLength);
        m.Set($"{arch}.embedding_length", (uint)c.HiddenSize);
        m.Set($"{arch}.block_count", (uint)c.LayerCount);
        m.Set($"{arch}.feed_forward_length", (uint)c.FeedForwardSize);
        m.Set($"{arch}.attention.head_count", (uint)c.HeadCount);
        m.Set($"{arch}.attention.head_count_kv", (uint)c.KvHeadCount);
        m.Set($"{arch}.rope.dimension_count", (uint)c.HeadDim);
        m.Set($"{arch}.rope.freq_base", c.RopeTheta);
        m.Set($"{arch}.attention.layer_norm_rms_epsilon", c.RmsNormEps);
        m.Set(arch + GgufModel.ActivationKeySuffix, Activations.Name(c.Activation));
        GgufTokenizer.Write(m, tokenizer);
    }

    // Declares every tensor (llama.cpp's order: embedding, layers, final norm) and records how to fill it.
    private static void Plan(GgufWriter w, List<Action<GgufWriter>> plan, ModelConfig c, SyntheticModelSpec spec, TokenizerModel tokenizer)
    {
        ulong seed = spec.Seed;
        float embedAmplitude = LogitStdDev / MathF.Sqrt(c.HiddenSize) * MathF.Sqrt(3);
        float branchGain = ResidualRms / MathF.Sqrt(2 * c.LayerCount);
        IReadOnlyList<int>? tokenTypes = tokenizer.TokenTypes;
        Declare(w, plan, BitNetTensors.TokenEmbedding, GgmlType.F16, [c.HiddenSize, c.VocabSize],
            name => EmbeddingRows(seed, name, c.HiddenSize, c.VocabSize, row =>
                tokenTypes is not null && tokenTypes[(int)row] == ControlTokenType ? embedAmplitude * ControlTokenDamping : embedAmplitude));
        for (int layer = 0; layer < c.LayerCount; layer++)
        {
            foreach (string part in (string[])["attn_norm", "attn_q", "attn_k", "attn_v", "attn_sub_norm", "attn_output",
                         "ffn_norm", "ffn_gate", "ffn_up", "ffn_sub_norm", "ffn_down"])
            {
                long[] shape = BitNetTensors.Shape(c, part);
                string name = BitNetTensors.Weight(layer, part);
                if (shape.Length == 1)
                {
                    Declare(w, plan, name, GgmlType.F32, shape, n => NormVector(seed, n, (int)shape[0]));
                    continue;
                }

                Declare(w, plan, name, spec.WeightType, shape, n => TernaryRows(seed, n, spec.WeightType, shape[0], shape[1], spec.BlockScaleJitter));
                float gain = part is "attn_output" or "ffn_down" ? branchGain : 1f;
                string scaleName = BitNetTensors.Scale(layer, part);
                Declare(w, plan, scaleName, GgmlType.F32, [1], n => ProjectionScale(seed, n, shape[0], gain, spec.BlockScaleJitter));
            }
        }

        Declare(w, plan, BitNetTensors.OutputNorm, GgmlType.F32, [c.HiddenSize], n => NormVector(seed, n, c.HiddenSize));
    }

    private static void Declare(GgufWriter w, List<Action<GgufWriter>> plan, string name, GgmlType type, long[] shape, Func<string, Action<GgufWriter>> fill)
    {
        w.AddTensor(name, type, shape);
        plan.Add(fill(name));
    }

    private static Action<GgufWriter> NormVector(ulong seed, string name, int n) => w =>
    {
        var rng = new SplitMix64(SplitMix64.Derive(seed, name));
        var bytes = new byte[n * 4];
        for (int i = 0; i < n; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), 1f + rng.NextSymmetric(0.1f));
        }

        w.WriteTensorData(bytes);
    };

    private static Action<GgufWriter> ProjectionScale(ulong seed, string name, long fanIn, float gain, float jitter) => w =>
    {
        var rng = new SplitMix64(SplitMix64.Derive(seed, name));
        float meanSquareD = 1f + (jitter * jitter / 3f);
        float scale = gain / MathF.Sqrt(2f / 3f * fanIn * meanSquareD) * (1f + rng.NextSymmetric(0.1f));
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(bytes, scale);
        w.WriteTensorData(bytes);
    };

    private static Action<GgufWriter> EmbeddingRows(ulong seed, string name, int width, long rows, Func<long, float> amplitudeOf) => w =>
        WriteRows(w, seed, name, rows, width * 2, (ref SplitMix64 rng, long index, Span<byte> row) =>
        {
            float amplitude = amplitudeOf(index);
            for (int i = 0; i < width; i++)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(row[(i * 2)..], Fp16.FromFloat(rng.NextSymmetric(amplitude)));
            }
        });

    // Block scales d = 1 + U(-jitter, jitter); the draw is made even for jitter 0 so every other value keeps its seed.
    private static Action<GgufWriter> TernaryRows(ulong seed, string name, GgmlType type, long width, long rows, float jitter) => w =>
    {
        int blocks = (int)(width / 256);
        int rowBytes = (int)GgmlTypeInfo.RowBytes(type, width);
        WriteRows(w, seed, name, rows, rowBytes, (ref SplitMix64 rng, long index, Span<byte> row) =>
        {
            Span<sbyte> trits = stackalloc sbyte[256];
            Span<float> d = stackalloc float[1];
            for (int b = 0; b < blocks; b++)
            {
                FillTrits(ref rng, trits);
                d[0] = 1f + rng.NextSymmetric(jitter);
                if (type == GgmlType.TQ2_0)
                {
                    Tq2_0.EncodeTernary(trits, d, row.Slice(b * Tq2_0.BlockBytes, Tq2_0.BlockBytes));
                }
                else
                {
                    Tq1_0.EncodeTernary(trits, d, row.Slice(b * Tq1_0.BlockBytes, Tq1_0.BlockBytes));
                }
            }
        });
    };

    // 40 trits from each 64-bit draw (3^40 < 2^64; the bias is below 1e-9).
    private static void FillTrits(ref SplitMix64 rng, Span<sbyte> trits)
    {
        int i = 0;
        while (i < trits.Length)
        {
            ulong r = rng.Next();
            for (int k = 0; k < 40 && i < trits.Length; k++, i++)
            {
                trits[i] = (sbyte)((int)(r % 3) - 1);
                r /= 3;
            }
        }
    }

    private delegate void RowFiller(ref SplitMix64 rng, long index, Span<byte> row);

    // Rows are generated in chunks of 64, each chunk from its own derived seed, so chunks can be filled in
    // parallel and the bytes do not depend on the number of threads.
    private static void WriteRows(GgufWriter w, ulong seed, string name, long rows, int rowBytes, RowFiller fill)
    {
        long chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
        byte[] buffer = new byte[(long)Math.Min(chunks, ChunksPerBatch) * RowsPerChunk * rowBytes];
        for (long first = 0; first < chunks; first += ChunksPerBatch)
        {
            int inBatch = (int)Math.Min(ChunksPerBatch, chunks - first);
            long batchFirst = first;
            Parallel.For(0, inBatch, k =>
            {
                long chunk = batchFirst + k;
                var rng = new SplitMix64(SplitMix64.Derive(seed, name, chunk));
                long rowStart = chunk * RowsPerChunk;
                int n = (int)Math.Min(RowsPerChunk, rows - rowStart);
                for (int r = 0; r < n; r++)
                {
                    fill(ref rng, rowStart + r, buffer.AsSpan((((k * RowsPerChunk) + r) * rowBytes), rowBytes));
                }
            });

            long batchRows = Math.Min(rows - (first * RowsPerChunk), (long)inBatch * RowsPerChunk);
            w.WriteTensorData(buffer.AsSpan(0, (int)(batchRows * rowBytes)));
        }
    }
}
