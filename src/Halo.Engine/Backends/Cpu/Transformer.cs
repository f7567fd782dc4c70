using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Halo.Core.Models;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Profiling;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu;

/// <summary>
/// The BitNet b1.58 forward pass of DESIGN.md section 2 over a batch of tokens, each with its own slot and
/// position, on the CPU. <see cref="Forward"/> reads like the paper; kernels live in <c>Kernels/</c>.
/// All buffers are allocated once for <see cref="MaxTokens"/> tokens, so a step allocates nothing.
/// </summary>
internal sealed unsafe class Transformer : IDisposable
{
    private readonly ModelWeights _w;
    private readonly ModelConfig _c;
    private readonly KvCache _cache;
    private readonly WorkerPool _pool;
    private readonly Activation _activation;
    private readonly ActivationScaling _scaling;
    private readonly bool _llamaCppNumerics;
    private readonly int _qDim, _kvDim;

    // Activations of the batch, row t is token t.
    private readonly float* _x;       // (T, d) residual stream
    private readonly float* _h;       // (T, d) normed input of a block
    private readonly float* _q;       // (T, heads * head_dim)
    private readonly float* _k;       // (T, kv_heads * head_dim)
    private readonly float* _v;       // (T, kv_heads * head_dim)
    private readonly float* _att;     // (T, heads * head_dim)
    private readonly float* _gate;    // (T, ffn)
    private readonly float* _up;      // (T, ffn)
    private readonly float* _y;       // (T, d) output of a block's last matmul
    private readonly float* _rope;    // (T, head_dim): cos then sin per token
    private readonly int[] _slots;    // (T)
    private readonly int[] _positions;// (T)
    private readonly QuantizedActivations _qx;
    private readonly TernaryMatMulWork _matmul;
    private readonly LmHeadWork _lmHead = new();
    private readonly Int8LmHeadWork _int8LmHead = new();
    private readonly Int8Matrix? _int8Head;
    private readonly Int4LmHeadWork _int4LmHead = new();
    private readonly Int4Matrix? _int4Head;
    private readonly Int6LmHeadWork _int6LmHead = new();
    private readonly Int6Matrix? _int6Head;
    private readonly sbyte* _headQ;   // (d, or the 4-bit head's padded columns, zero past d) LM-head input as int8
    private readonly short* _headGroupSums; // (the 4-bit head's ScaleStride) sum of _headQ per column group
    private readonly byte* _int6Inputs; // (8, Int6MatVec.InputBytes) LM-head inputs of the 6-bit head
    private readonly byte* _headU;    // (d) the same plus 128, for the unsigned-by-signed dot product
    private readonly sbyte* _headBatchQ; // (8, d) int8 LM-head inputs of a batched-logits group
    private readonly byte* _headBatchU;  // (8, d) the same plus 128
    private readonly float* _headBatchD; // (8) their scales
    private readonly float** _headBatchTargets; // (8) where each token's logits go
    private readonly float* _headScratch; // (vocab) logits of a padded group's copies, discarded
    private readonly AttentionWork _attention;
    private readonly TokenWork _tokenWork;
    private int _tokens;
    private int _layer;

    public Transformer(ModelWeights weights, Int8Matrix? int8Head, Int4Matrix? int4Head, Int6Matrix? int6Head, KvCache cache, WorkerPool pool, int maxTokens, Activation activation, NumericsMode numerics, ActivationScaling scaling)
    {
        _int8Head = int8Head;
        _int4Head = int4Head;
        _int6Head = int6Head;
        _w = weights;
        _c = weights.Config;
        _cache = cache;
        _pool = pool;
        _matmul = new TernaryMatMulWork(pool.Threads);
        _activation = activation;
        _scaling = scaling;
        _llamaCppNumerics = numerics == NumericsMode.LlamaCpp;
        MaxTokens = maxTokens;
        _qDim = _c.HeadCount * _c.HeadDim;
        _kvDim = _c.KvHeadCount * _c.HeadDim;
        int d = _c.HiddenSize, ffn = _c.FeedForwardSize;
        _x = Alloc(maxTokens * d);
        _h = Alloc(maxTokens * d);
        _q = Alloc(maxTokens * _qDim);
        _k = Alloc(maxTokens * _kvDim);
        _v = Alloc(maxTokens * _kvDim);
        _att = Alloc(maxTokens * _qDim);
        _gate = Alloc(maxTokens * ffn);
        _up = Alloc(maxTokens * ffn);
        _y = Alloc(maxTokens * d);
        _rope = Alloc(maxTokens * _c.HeadDim);
        _slots = new int[maxTokens];
        _positions = new int[maxTokens];
        _qx = new QuantizedActivations(maxTokens, Math.Max(Math.Max(d, _qDim), ffn));
        _attention = new AttentionWork(this);
        _tokenWork = new TokenWork(this);
        int headCols = Math.Max(d, int4Head?.PaddedCols ?? 0);
        _headQ = (sbyte*)NativeMemory.AlignedAlloc((nuint)headCols, 64);
        new Span<sbyte>(_headQ, headCols).Clear();
        _headGroupSums = (short*)NativeMemory.AlignedAlloc((nuint)(int4Head?.ScaleStride ?? 1) * sizeof(short), 64);
        _int6Inputs = (byte*)NativeMemory.AlignedAlloc((nuint)(Int6MatVec.BatchTokens * (int6Head is null ? 1 : Int6MatVec.InputBytes(int6Head))), 64);
        _headU = (byte*)NativeMemory.AlignedAlloc((nuint)d, 64);
        _headBatchQ = (sbyte*)NativeMemory.AlignedAlloc((nuint)(Int8MatVec.BatchTokens * d), 64);
        _headBatchU = (byte*)NativeMemory.AlignedAlloc((nuint)(Int8MatVec.BatchTokens * d), 64);
        _headBatchD = Alloc(Int8MatVec.BatchTokens);
        _headBatchTargets = (float**)NativeMemory.AlignedAlloc((nuint)(Int8MatVec.BatchTokens * sizeof(float*)), 64);
        _headScratch = int8Head is null && int6Head is null ? null : Alloc(_c.VocabSize);
    }

    public int MaxTokens { get; }

    public OpProfile? Profile { get; set; }

    /// <summary>Run the first layer only (<see cref="IBackend.WarmingUp"/>).</summary>
    public bool WarmingUp { get; set; }

    /// <summary>Sets token t of the next batch.</summary>
    public void SetToken(int t, int token, int slot, int position)
    {
        _w.Embedding.ReadRow(token, new Span<float>(_x + (long)t * _c.HiddenSize, _c.HiddenSize));
        _slots[t] = slot;
        _positions[t] = position;
    }

    /// <summary>Runs every layer over the first <paramref name="tokens"/> tokens set by <see cref="SetToken"/>.</summary>
    public void Forward(int tokens)
    {
        _tokens = tokens;
        int d = _c.HiddenSize, ffn = _c.FeedForwardSize;
        long t0 = Stopwatch.GetTimestamp();
        for (int t = 0; t < tokens; t++)
        {
            VectorOps.RopeTable(_positions[t], _c.RopeTheta, _c.HeadDim, _rope + t * _c.HeadDim, _rope + t * _c.HeadDim + _c.HeadDim / 2);
        }

        Mark(Op.Rope, ref t0);
        int layers = WarmingUp ? 1 : _c.LayerCount;
        for (_layer = 0; _layer < layers; _layer++)
        {
            LayerWeights L = _w.Layers[_layer];

            // Attention block: h = rmsnorm(x) * attn_norm; q,k,v = (W h) * s
            NormQuantize(TokenOp.NormQuantize, _x, null, L.AttnNorm, _h, d);
            Mark(Op.NormQuantize, ref t0);
            _matmul.Set(_qx, L.Wq, _q, L.Wk, _k, L.Wv, _v);
            _pool.Run(_matmul);
            Mark(Op.MatMulQkv, ref t0);

            // q,k = RoPE NEOX; k,v stored in the cache at each token's position
            PerToken(TokenOp.RopeAndStore, null, null, null, 0);
            Mark(Op.Rope, ref t0);

            // a = softmax(q k^T / sqrt(head_dim) + causal) v, per head (GQA)
            _attention.Prepare();
            _pool.Run(_attention);
            _attention.MergeRanges();
            Mark(Op.Attention, ref t0);

            // x += (Wo (rmsnorm(a) * attn_sub_norm)) * so
            NormQuantize(TokenOp.NormQuantize, _att, null, L.AttnSubNorm, _att, _qDim);
            Mark(Op.NormQuantize, ref t0);
            _matmul.Set(_qx, L.Wo, _y);
            _pool.Run(_matmul);
            Mark(Op.MatMulOutput, ref t0);

            // Feed-forward block: x += y (the residual above); h = rmsnorm(x) * ffn_norm; f = act((Wg h) * sg) * ((Wu h) * su)
            NormQuantize(TokenOp.AddNormQuantize, _x, _y, L.FfnNorm, _h, d);
            Mark(Op.NormQuantize, ref t0);
            _matmul.Set(_qx, L.Wgate, _gate, L.Wup, _up);
            _pool.Run(_matmul);
            Mark(Op.MatMulGateUp, ref t0);

            // x += (Wd (rmsnorm(f) * ffn_sub_norm)) * sd, f computed as the norm reads it
            NormQuantize(TokenOp.GatedNormQuantize, _gate, _up, L.FfnSubNorm, _gate, ffn);
            Mark(Op.NormQuantize, ref t0);
            _matmul.Set(_qx, L.Wdown, _y);
            _pool.Run(_matmul);
            Mark(Op.MatMulDown, ref t0);
            PerToken(TokenOp.Add, _y, null, _x, d);
            Mark(Op.Residual, ref t0);
        }
    }

    /// <summary>
    /// target = rmsnorm(source) * weight for each token's row [n], quantized to int8 for the next matmul; with
    /// <see cref="TokenOp.AddNormQuantize"/> the residual <paramref name="other"/> is first added to source, with
    /// <see cref="TokenOp.GatedNormQuantize"/> source (the gate) first becomes act(source) * other. One pass over the
    /// workers instead of two or three.
    /// </summary>
    private void NormQuantize(TokenOp op, float* source, float* other, float[] weight, float* target, int n)
    {
        _qx.Prepare(_tokens, n, _scaling);
        PerToken(op, source, weight, target, n, other);
    }

    /// <summary>
    /// An element-wise op on each token's row [n] of the batch: on this thread for fewer than two items' tokens
    /// (decoding one to three sequences), spread over the workers for more (batched decode and prefill, where these
    /// ops would otherwise leave a core idle between matmuls).
    /// </summary>
    private void PerToken(TokenOp op, float* source, float[]? weight, float* target, int n, float* other = null)
    {
        _tokenWork.Set(op, source, weight is null ? null : Pinned(weight), target, n, other);
        if (_tokens < 2 * TokenWork.TokensPerItem)
        {
            _tokenWork.Do(0, _tokens);
        }
        else
        {
            _pool.Run(_tokenWork);
        }
    }

    private void DoToken(TokenOp op, int t, float* source, float* weight, float* target, int n, float* other)
    {
        long row = (long)t * n;
        switch (op)
        {
            case TokenOp.NormQuantize:
                VectorOps.RmsNorm(source + row, weight, target + row, n, _c.RmsNormEps);
                _qx.QuantizeToken(target + row, t);
                break;
            case TokenOp.AddNormQuantize:
                VectorOps.Add(source + row, other + row, n);
                VectorOps.RmsNorm(source + row, weight, target + row, n, _c.RmsNormEps);
                _qx.QuantizeToken(target + row, t);
                break;
            case TokenOp.GatedNormQuantize:
                VectorOps.GatedActivation(source + row, other + row, n, _activation);
                VectorOps.RmsNorm(source + row, weight, target + row, n, _c.RmsNormEps);
                _qx.QuantizeToken(target + row, t);
                break;
            case TokenOp.RopeAndStore:
                float* cos = _rope + t * _c.HeadDim, sin = cos + _c.HeadDim / 2;
                VectorOps.RopeNeox(_q + (long)t * _qDim, _c.HeadCount, _c.HeadDim, cos, sin);
                VectorOps.RopeNeox(_k + (long)t * _kvDim, _c.KvHeadCount, _c.HeadDim, cos, sin);
                StoreKv(t);
                break;
            default:
                VectorOps.Add(target + row, source + row, n);
                break;
        }
    }

    /// <summary>logits [vocab] = E (rmsnorm(x[t]) * output_norm) for token t of the last batch.</summary>
    public void Logits(int t, float* logits)
    {
        long t0 = Stopwatch.GetTimestamp();
        int d = _c.HiddenSize;
        float* h = FinalNorm(t);

        if (_int4Head is not null)
        {
            float dq = QuantizeHeadInput(h, d);
            Int4MatVec.GroupSums(_int4Head, _headQ, _headGroupSums);
            _int4LmHead.Set(_int4Head, _headQ, _headGroupSums, dq, logits);
            _pool.Run(_int4LmHead);
        }
        else if (_int6Head is not null)
        {
            float* target = logits;
            Int6MatVec.QuantizeInput(_int6Head, h, d, _int6Inputs);
            _int6LmHead.Set(_int6Head, _int6Inputs, &target, 1);
            _pool.Run(_int6LmHead);
        }
        else if (_int8Head is not null)
        {
            float dq = QuantizeHeadInput(h, d);
            float* target = logits;
            _int8LmHead.Set(_int8Head, _headU, _headQ, &dq, &target, 1);
            _pool.Run(_int8LmHead);
        }
        else
        {
            _lmHead.Set(_w.LmHead, _c.VocabSize, h, logits);
            _pool.Run(_lmHead);
        }
        Mark(Op.LmHead, ref t0);
    }

    /// <summary>Whether <see cref="LogitsBatch"/> reads the head once for several tokens (the int8 and 6-bit heads).</summary>
    public bool BatchesLogits => _int8Head is not null || _int6Head is not null;

    /// <summary>
    /// Logits of 2..<see cref="Int8MatVec.BatchTokens"/> tokens of the last batch (batch indices
    /// <paramref name="t"/>) in one pass over the int8 or 6-bit head: with several sequences decoding, the head is read once
    /// per step, not once per sequence. A short group is padded with copies of its first token into a scratch row.
    /// </summary>
    public void LogitsBatch(int* t, float** logits, int n)
    {
        long t0 = Stopwatch.GetTimestamp();
        if (_int6Head is not null)
        {
            Int6LogitsBatch(t, logits, n);
            Mark(Op.LmHead, ref t0);
            return;
        }

        int d = _c.HiddenSize;
        for (int k = 0; k < n; k++)
        {
            _headBatchD[k] = QuantizeHeadInput(FinalNorm(t[k]), d, _headBatchQ + (long)k * d, _headBatchU + (long)k * d);
            _headBatchTargets[k] = logits[k];
        }

        for (int k = n; k < Int8MatVec.BatchTokens; k++)
        {
            Buffer.MemoryCopy(_headBatchQ, _headBatchQ + (long)k * d, d, d);
            Buffer.MemoryCopy(_headBatchU, _headBatchU + (long)k * d, d, d);
            _headBatchD[k] = _headBatchD[0];
            _headBatchTargets[k] = _headScratch;
        }

        _int8LmHead.Set(_int8Head!, _headBatchU, _headBatchQ, _headBatchD, _headBatchTargets, Int8MatVec.BatchTokens);
        _pool.Run(_int8LmHead);
        Mark(Op.LmHead, ref t0);
    }

    /// <summary>
    /// <see cref="LogitsBatch"/> over the 6-bit head. Its 8-token pass is compute-bound (on Zen 5, one thread, about
    /// 2.7 one-token passes with the AVX-512BW kernel, 19 against 7 ms; 1.8 with the VNNI one, 12.8 against 7), so
    /// groups of fewer than 3 take one pass per token instead (both give the same logits); a group of 3 to 7 is padded
    /// with copies of its first token into a scratch row.
    /// </summary>
    private void Int6LogitsBatch(int* t, float** logits, int n)
    {
        Int6Matrix m = _int6Head!;
        if (n < 3)
        {
            for (int k = 0; k < n; k++)
            {
                float* target = logits[k];
                Int6MatVec.QuantizeInput(m, FinalNorm(t[k]), _c.HiddenSize, _int6Inputs);
                _int6LmHead.Set(m, _int6Inputs, &target, 1);
                _pool.Run(_int6LmHead);
            }

            return;
        }

        long bytes = Int6MatVec.InputBytes(m);
        for (int k = 0; k < Int6MatVec.BatchTokens; k++)
        {
            if (k < n)
            {
                Int6MatVec.QuantizeInput(m, FinalNorm(t[k]), _c.HiddenSize, _int6Inputs + k * bytes);
                _headBatchTargets[k] = logits[k];
            }
            else
            {
                Buffer.MemoryCopy(_int6Inputs, _int6Inputs + k * bytes, bytes, bytes);
                _headBatchTargets[k] = _headScratch;
            }
        }

        _int6LmHead.Set(m, _int6Inputs, _headBatchTargets, Int6MatVec.BatchTokens);
        _pool.Run(_int6LmHead);
    }

    /// <summary>h = rmsnorm(x[t]) * output_norm (rounded to F16 in llama.cpp numerics), the LM head's input.</summary>
    private float* FinalNorm(int t)
    {
        int d = _c.HiddenSize;
        float* h = _h + (long)t * d;
        VectorOps.RmsNorm(_x + (long)t * d, Pinned(_w.OutputNorm), h, d, _c.RmsNormEps);
        if (_llamaCppNumerics)
        {
            VectorOps.RoundToHalf(h, d);
        }

        return h;
    }

    private float QuantizeHeadInput(float* h, int d) => QuantizeHeadInput(h, d, _headQ, _headU);

    /// <summary>h [d] to int8 per token (q = round(127 h / max|h|)); returns the scale d with h ~ q * d.</summary>
    private static float QuantizeHeadInput(float* h, int d, sbyte* headQ, byte* headU)
    {
        float amax = 0f;
        for (int i = 0; i < d; i++)
        {
            amax = MathF.Max(amax, MathF.Abs(h[i]));
        }

        float inverse = amax > 0 ? 127f / amax : 0f;
        for (int i = 0; i < d; i++)
        {
            int v = (int)MathF.Round(h[i] * inverse);
            headQ[i] = (sbyte)v;
            headU[i] = (byte)(v + 128);
        }

        return amax / 127f;
    }

    private void StoreKv(int t) =>
        _cache.Store(_slots[t], _layer, _positions[t], _k + (long)t * _kvDim, _v + (long)t * _kvDim, _llamaCppNumerics);

    /// <summary>
    /// Attention of token t for query heads [head, head + count), which share KV head head / group, over
    /// positions 0..pos of its slot.
    /// </summary>
    private void Attend(int t, int head, int count, float* scores)
    {
        int hd = _c.HeadDim, kvHead = head / (_c.HeadCount / _c.KvHeadCount);
        long offset = (long)t * _qDim + head * hd;
        Attention.Group(_q + offset, _cache.Keys(_slots[t], _layer, kvHead), _cache.Values(_slots[t], _layer, kvHead), _cache.Storage,
            _positions[t] + 1, count, hd, scores, _cache.Capacity, _att + offset, _llamaCppNumerics);
    }

    /// <summary>
    /// Attention of tokens t and t + 1, consecutive positions of one sequence, for the query heads of KV head
    /// <paramref name="kvHead"/>, in one pass over its cache (<see cref="Attention.GroupPair"/>).
    /// </summary>
    private void AttendPair(int t, int kvHead, float* scores)
    {
        int hd = _c.HeadDim, group = _c.HeadCount / _c.KvHeadCount;
        long offset = (long)t * _qDim + kvHead * group * hd;
        Attention.GroupPair(_q + offset, _q + offset + _qDim, _cache.Keys(_slots[t], _layer, kvHead), _cache.Values(_slots[t], _layer, kvHead),
            _cache.Storage, _positions[t] + 1, hd, scores, _cache.Capacity, _att + offset, _att + offset + _qDim);
    }

    /// <summary>Norm vectors live on the pinned object heap (see <see cref="ModelWeights"/>), so their address is stable.</summary>
    private static float* Pinned(float[] weight) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(weight));

    private void Mark(Op op, ref long t0)
    {
        if (Profile is { } profile)
        {
            long now = Stopwatch.GetTimestamp();
            profile.Add(op, now - t0);
            t0 = now;
        }
    }

    private static float* Alloc(long count)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        ZeroPages.Clear(p, (nuint)(count * sizeof(float)));
        return p;
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(_x);
        NativeMemory.AlignedFree(_h);
        NativeMemory.AlignedFree(_q);
        NativeMemory.AlignedFree(_k);
        NativeMemory.AlignedFree(_v);
        NativeMemory.AlignedFree(_att);
        NativeMemory.AlignedFree(_gate);
        NativeMemory.AlignedFree(_up);
        NativeMemory.AlignedFree(_y);
        NativeMemory.AlignedFree(_rope);
        NativeMemory.AlignedFree(_headQ);
        NativeMemory.AlignedFree(_headU);
        NativeMemory.AlignedFree(_headBatchQ);
        NativeMemory.AlignedFree(_headBatchU);
        NativeMemory.AlignedFree(_headBatchD);
        NativeMemory.AlignedFree(_headBatchTargets);
        NativeMemory.AlignedFree(_headScratch);
        NativeMemory.AlignedFree(_headGroupSums);
        NativeMemory.AlignedFree(_int6Inputs);
        _attention.Free();
        _qx.Dispose();
    }

    private enum TokenOp
    {
        NormQuantize,       // target = rmsnorm(source) * weight, then int8 into the quantized activations
        AddNormQuantize,    // source += other (the residual), then as NormQuantize
        GatedNormQuantize,  // source = act(source) * other (gate, up), then as NormQuantize
        RopeAndStore,       // RoPE on q and k, then k and v into the cache
        Add,                // target += source
    }

    /// <summary>One <see cref="TokenOp"/> over the batch, in items of <see cref="TokensPerItem"/> tokens.</summary>
    private sealed class TokenWork(Transformer owner) : ParallelWork
    {
        // Four tokens per item, so a batched decode step of 8 sequences gives two workers one item each (at 8 per
        // item its one item left a core idle while it ran: 4.2 -> 3.3 ms of the step's 45-50 on 2 threads; 2 per
        // item measured the same as 4).
        public const int TokensPerItem = 4;

        private TokenOp _op;
        private float* _source;
        private float* _weight;
        private float* _target;
        private float* _other;
        private int _n;

        public void Set(TokenOp op, float* source, float* weight, float* target, int n, float* other)
        {
            _op = op;
            _source = source;
            _weight = weight;
            _target = target;
            _n = n;
            _other = other;
        }

        public void Do(int start, int end)
        {
            for (int t = start; t < end; t++)
            {
                owner.DoToken(_op, t, _source, _weight, _target, _n, _other);
            }
        }

        protected override int ItemCount => (owner._tokens + TokensPerItem - 1) / TokensPerItem;

        protected override void Execute(int item, int worker) =>
            Do(item * TokensPerItem, Math.Min(owner._tokens, (item + 1) * TokensPerItem));
    }

    /// <summary>
    /// Attention in items of (token, KV head, range of positions), so the query heads sharing a KV head read it
    /// once. When tokens x KV heads are too few to keep every worker busy (decoding one sequence: 5 KV heads on 2
    /// threads leaves one idle a third of the time), each token's positions are cut into ranges whose partial
    /// results <see cref="MergeRanges"/> joins after the dispatch. llama.cpp numerics normalise the probabilities
    /// before V, so there the items are (token, query head) instead. A prefill chunk of one sequence goes in items of
    /// (pair of consecutive tokens, KV head), which read the cache once for both (<see cref="Attention.GroupPair"/>).
    /// </summary>
    private sealed class AttentionWork : ParallelWork
    {
        private readonly Transformer _owner;
        private readonly int _group, _kvHeads, _hd, _threads;
        private readonly long _scoresPerWorker;
        private readonly float* _scores;   // (workers, 2 tokens, group, cache capacity) each worker's attention scores
        private readonly float* _partials; // (items, group, head_dim) unnormalised outputs of the ranges
        private readonly float* _maxes;    // (items, group) their largest scores
        private readonly float* _sums;     // (items, group) their sums of exponentials
        private int _ranges;
        private int _headsPerItem;
        private bool _pairs;

        public AttentionWork(Transformer owner)
        {
            _owner = owner;
            _kvHeads = owner._c.KvHeadCount;
            _group = owner._c.HeadCount / _kvHeads;
            _hd = owner._c.HeadDim;
            _threads = owner._pool.Threads;
            _scoresPerWorker = 2L * _group * owner._cache.Capacity;
            _scores = Alloc(_threads * _scoresPerWorker);
            // Ranges are used only when tokens x KV heads < 4 x threads, which bounds the items below 8 x threads.
            _partials = Alloc((long)MaxRangeItems * _group * _hd);
            _maxes = Alloc((long)MaxRangeItems * _group);
            _sums = Alloc((long)MaxRangeItems * _group);
        }

        private int MaxRangeItems => 8 * _threads;

        /// <summary>Chooses the items for the batch set now: ranges per (token, KV head), or heads per item.</summary>
        public void Prepare()
        {
            int pairs = _owner._tokens * _kvHeads, wanted = 4 * _threads;
            bool few = pairs < wanted;
            _ranges = few && !_owner._llamaCppNumerics ? (wanted + pairs - 1) / pairs : 1;
            _headsPerItem = few && _owner._llamaCppNumerics ? 1 : _group;
            _pairs = !few && !_owner._llamaCppNumerics && Attention.PairsSupported(_group, _hd) && OneSequenceRun();
        }

        /// <summary>Whether the batch is consecutive positions of one sequence (a prefill chunk), so that tokens can go in pairs.</summary>
        private bool OneSequenceRun()
        {
            for (int t = 1; t < _owner._tokens; t++)
            {
                if (_owner._slots[t] != _owner._slots[0] || _owner._positions[t] != _owner._positions[0] + t)
                {
                    return false;
                }
            }

            return _owner._tokens > 1;
        }

        protected override int ItemCount => _pairs
            ? (_owner._tokens + 1) / 2 * _kvHeads
            : _owner._tokens * _owner._c.HeadCount / _headsPerItem * _ranges;

        protected override void Execute(int item, int worker)
        {
            float* scores = _scores + worker * _scoresPerWorker;
            if (_pairs)
            {
                // item = pair * kv_heads + g: tokens 2 pair and 2 pair + 1 (the last alone when the count is odd).
                int first = item / _kvHeads * 2, kvHead = item % _kvHeads;
                if (first + 1 < _owner._tokens)
                {
                    _owner.AttendPair(first, kvHead, scores);
                }
                else
                {
                    _owner.Attend(first, kvHead * _group, _group, scores);
                }

                return;
            }

            if (_ranges == 1)
            {
                int itemsPerToken = _owner._c.HeadCount / _headsPerItem;
                _owner.Attend(item / itemsPerToken, item % itemsPerToken * _headsPerItem, _headsPerItem, scores);
                return;
            }

            // item = ((t * kv_heads) + g) * ranges + r; range r holds whole chunks [chunks * r / ranges, chunks * (r + 1) / ranges).
            int pair = item / _ranges, r = item % _ranges, t = pair / _kvHeads, g = pair % _kvHeads;
            int n = _owner._positions[t] + 1, chunks = (n + Attention.Chunk - 1) / Attention.Chunk;
            int p0 = chunks * r / _ranges * Attention.Chunk, p1 = Math.Min(n, chunks * (r + 1) / _ranges * Attention.Chunk);
            int slot = _owner._slots[t], layer = _owner._layer;
            Attention.Partial(_owner._q + (long)t * _owner._qDim + g * _group * _hd, _owner._cache.Keys(slot, layer, g), _owner._cache.Values(slot, layer, g),
                _owner._cache.Storage, p0, p1, _group, _hd, scores, _owner._cache.Capacity,
                _partials + (long)item * _group * _hd, _maxes + item * _group, _sums + item * _group, llamaCppNumerics: false);
        }

        /// <summary>Joins the ranges of each (token, KV head) into the attention output, when the batch had ranges.</summary>
        public void MergeRanges()
        {
            if (_ranges == 1)
            {
                return;
            }

            for (int pair = 0; pair < _owner._tokens * _kvHeads; pair++)
            {
                int t = pair / _kvHeads, g = pair % _kvHeads;
                long first = (long)pair * _ranges;
                Attention.Merge(_partials + first * _group * _hd, _maxes + first * _group, _sums + first * _group, _ranges, _group, _hd,
                    _owner._att + (long)t * _owner._qDim + g * _group * _hd);
            }
        }

        public void Free()
        {
            NativeMemory.AlignedFree(_scores);
            NativeMemory.AlignedFree(_partials);
            NativeMemory.AlignedFree(_maxes);
            NativeMemory.AlignedFree(_sums);
        }
    }
}
