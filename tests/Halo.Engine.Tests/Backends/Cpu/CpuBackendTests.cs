using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Tests.Reference;
using Halo.Testing;

namespace Halo.Engine.Tests.Backends.Cpu;

public sealed class CpuBackendTests
{
    private static readonly int[] Prompt = [5, 17, 250, 3, 99, 42, 7, 128];

    public static TheoryData<GgmlType, NumericsMode, Activation, int, bool, bool> EndToEndCases => new()
    {
        { GgmlType.TQ2_0, NumericsMode.Halo, Activation.Silu, 2, false, false },
        { GgmlType.TQ2_0, NumericsMode.Halo, Activation.Silu, 2, false, true },
        { GgmlType.TQ2_0, NumericsMode.LlamaCpp, Activation.Silu, 2, false, true },
        { GgmlType.TQ1_0, NumericsMode.LlamaCpp, Activation.Silu, 1, false, false },
        { GgmlType.TQ1_0, NumericsMode.Halo, Activation.Relu2, 4, true, true },
    };

    /// <summary>
    /// The SIMD backend against the double-precision reference, logits at every position. They differ only by
    /// float rounding inside ops, which can flip an int8 activation rounding now and then; 1% of the logit
    /// range bounds that on these shapes while a wrong op (scale, RoPE pair, GQA head) gives O(1) errors. The head
    /// is the int8 one (llama.cpp numerics: the file's), whose own error fits that bound on these uniform weights;
    /// the 6-bit head's does not (up to 2%), and LmHeadAccuracyTests measures each head against the exact one.
    /// </summary>
    [Theory]
    [MemberData(nameof(EndToEndCases))]
    public void Forward_TokenByToken_MatchesReferenceModel(GgmlType type, NumericsMode numerics, Activation activation, int kvHeads, bool untied, bool uniformBlockScales)
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig(activation, kvHeads), type, seed: 7, untiedHead: untied, uniformBlockScales: uniformBlockScales);
        LmHeadPrecision? head = numerics == NumericsMode.Halo ? LmHeadPrecision.Int8 : null;
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 2, Numerics = numerics, LmHead = head });
        ActivationScaling scaling = numerics == NumericsMode.LlamaCpp ? ActivationScaling.PerBlock : ActivationScaling.PerToken;
        var reference = new ReferenceModel(model, scaling, numerics == NumericsMode.LlamaCpp);
        var logits = new float[model.Config.VocabSize];
        for (int i = 0; i < Prompt.Length; i++)
        {
            backend.Forward([new SequenceChunk(0, i, new[] { Prompt[i] })], logits);
            double[] expected = reference.Step(Prompt[i]);
            AssertClose(expected, logits, $"position {i}");
        }
    }

    /// <summary>
    /// The int8 LM head against the exact one on the same hidden states: per-row int8 weights and a per-token
    /// int8 input must keep every logit within 1% of the logit range and the top token at every position.
    /// </summary>
    [Fact]
    public void Forward_Int8LmHead_StaysCloseToSourceHead()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend exact = CpuBackend.Create(model, new BackendOptions { Threads = 2, LmHead = LmHeadPrecision.Source });
        using CpuBackend int8 = CpuBackend.Create(model, new BackendOptions { Threads = 2, LmHead = LmHeadPrecision.Int8 });
        Assert.Equal(LmHeadPrecision.Int8, int8.LmHead);
        var a = new float[model.Config.VocabSize];
        var b = new float[model.Config.VocabSize];
        for (int i = 0; i < Prompt.Length; i++)
        {
            exact.Forward([new SequenceChunk(0, i, new[] { Prompt[i] })], a);
            int8.Forward([new SequenceChunk(0, i, new[] { Prompt[i] })], b);
            AssertClose(a.Select(v => (double)v).ToArray(), b, $"position {i}");
        }
    }

    /// <summary>
    /// The daemon's warm-up runs the first layer only, and leaves nothing behind: the same slot written again from
    /// position 0 gives exactly the logits of a backend that never warmed up.
    /// </summary>
    [Fact]
    public void Forward_WhileWarmingUp_RunsLessAndLeavesNoTrace()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        Assert.True(model.Config.LayerCount > 1);
        using CpuBackend warmed = CpuBackend.Create(model, new BackendOptions { Threads = 2 });
        using CpuBackend cold = CpuBackend.Create(model, new BackendOptions { Threads = 2 });
        var warmUp = new float[model.Config.VocabSize];
        var actual = new float[model.Config.VocabSize];
        var expected = new float[model.Config.VocabSize];

        warmed.WarmingUp = true;
        warmed.Forward([new SequenceChunk(0, 0, Prompt)], warmUp);
        warmed.WarmingUp = false;
        warmed.Forward([new SequenceChunk(0, 0, Prompt)], actual);
        cold.Forward([new SequenceChunk(0, 0, Prompt)], expected);

        Assert.Equal(expected, actual);
        Assert.NotEqual(expected, warmUp);
    }

    [Theory]
    [InlineData(false, 2)]
    [InlineData(true, 2)]
    [InlineData(false, 1)]
    public void Forward_BatchedPrefill_EqualsTokenByToken(bool uniformBlockScales, int kvHeads)
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig(kvHeads: kvHeads), uniformBlockScales: uniformBlockScales);
        // A batch of 18 (element-wise ops spread over the workers; the row-scaled GEMM in 4 groups of 4 tokens
        // then 2 through its one-token path), then a batch of 1. With one KV head, 4 query heads share it, and the
        // batch's attention goes two tokens at a time (Attention.GroupPair).
        int[] prompt = [.. Enumerable.Range(0, 19).Select(i => (i * 37 + 5) % model.Config.VocabSize)];
        using CpuBackend batched = CpuBackend.Create(model, new BackendOptions { Threads = 2, MaxBatchTokens = 18 });
        using CpuBackend single = CpuBackend.Create(model, new BackendOptions { Threads = 1 });
        var a = new float[model.Config.VocabSize];
        var b = new float[model.Config.VocabSize];
        batched.Forward([new SequenceChunk(0, 0, prompt)], a);
        for (int i = 0; i < prompt.Length; i++)
        {
            single.Forward([new SequenceChunk(0, i, new[] { prompt[i] })], b);
        }

        Assert.Equal(b, a);
    }

    /// <summary>
    /// Decoding one sequence spreads its positions over the workers in ranges merged afterwards (flash-decoding);
    /// past several 64-position chunks that must agree with the prompt attended whole, as a batched prefill does.
    /// </summary>
    [Fact]
    public void Forward_DecodeInPositionRanges_MatchesWholeSequenceAttention()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig(), uniformBlockScales: true);
        int[] prompt = [.. Enumerable.Range(0, 200).Select(i => (i * 37 + 5) % model.Config.VocabSize)];
        using CpuBackend batched = CpuBackend.Create(model, new BackendOptions { Threads = 2, MaxBatchTokens = 200, ContextLength = 256 });
        using CpuBackend single = CpuBackend.Create(model, new BackendOptions { Threads = 2, ContextLength = 256 });
        var a = new float[model.Config.VocabSize];
        var b = new float[model.Config.VocabSize];
        batched.Forward([new SequenceChunk(0, 0, prompt)], a);
        for (int i = 0; i < prompt.Length; i++)
        {
            single.Forward([new SequenceChunk(0, i, new[] { prompt[i] })], b);
        }

        float scale = 0f;
        for (int i = 0; i < a.Length; i++)
        {
            scale = MathF.Max(scale, MathF.Abs(a[i]));
        }

        for (int i = 0; i < a.Length; i++)
        {
            Assert.True(MathF.Abs(a[i] - b[i]) <= 1e-4f * scale, $"logit {i}: {b[i]} vs {a[i]}");
        }
    }

    /// <summary>Five sequences decoding in one step share one pass over the int8 LM head (a group padded to eight).</summary>
    [Fact]
    public void Forward_FiveSlotsDecodingTogether_EqualsSeparateRuns()
    {
        const int slots = 5;
        using var model = new TestModelSource(TestModelSource.TinyConfig(), uniformBlockScales: true);
        int vocab = model.Config.VocabSize;
        using CpuBackend together = CpuBackend.Create(model, new BackendOptions { Threads = 2, MaxSlots = slots, LmHead = LmHeadPrecision.Int8 });
        using CpuBackend alone = CpuBackend.Create(model, new BackendOptions { Threads = 2, LmHead = LmHeadPrecision.Int8 });
        var step = new SequenceChunk[slots];
        var all = new float[slots * vocab];
        var one = new float[vocab];
        for (int s = 0; s < slots; s++)
        {
            together.Forward([new SequenceChunk(s, 0, Prompt[s..])], one);
            step[s] = new SequenceChunk(s, Prompt.Length - s, new[] { 3 + s });
        }

        together.Forward(step, all);
        for (int s = 0; s < slots; s++)
        {
            alone.Forward([new SequenceChunk(0, 0, Prompt[s..])], one);
            alone.Forward([new SequenceChunk(0, Prompt.Length - s, new[] { 3 + s })], one);
            Assert.Equal(one, all.AsSpan(s * vocab, vocab).ToArray());
        }
    }

    [Theory]
    [InlineData(LmHeadPrecision.Int8)]   // both sequences' logits from one batched pass over the head
    [InlineData(LmHeadPrecision.Int6)]
    [InlineData(LmHeadPrecision.Int4)]   // one pass per sequence
    public void Forward_TwoSlotsInOneStep_EqualsSeparateRuns(LmHeadPrecision head)
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 2, MaxSlots = 2, LmHead = head });
        int vocab = model.Config.VocabSize;
        var both = new float[2 * vocab];
        backend.Forward([new SequenceChunk(0, 0, Prompt[..5]), new SequenceChunk(1, 0, Prompt[3..])], both);
        backend.Forward([new SequenceChunk(1, 5, new[] { 9 }), new SequenceChunk(0, 5, new[] { 11 })], both);

        using CpuBackend alone = CpuBackend.Create(model, new BackendOptions { Threads = 2, LmHead = head });
        var one = new float[vocab];
        alone.Forward([new SequenceChunk(0, 0, Prompt[..5])], one);
        alone.Forward([new SequenceChunk(0, 5, new[] { 11 })], one);
        Assert.Equal(one, both.AsSpan(vocab, vocab).ToArray());
        alone.Forward([new SequenceChunk(0, 0, Prompt[3..])], one);
        alone.Forward([new SequenceChunk(0, 5, new[] { 9 })], one);
        Assert.Equal(one, both.AsSpan(0, vocab).ToArray());
    }

    /// <summary>Sequences decoding in one step share one pass over the int8 or 6-bit head (a group of 5 padded to 8): the same logits as alone.</summary>
    [Theory]
    [InlineData(LmHeadPrecision.Int8, 8)]
    [InlineData(LmHeadPrecision.Int6, 8)]
    [InlineData(LmHeadPrecision.Int6, 5)]
    public void Forward_SlotsDecodingTogether_EqualsSeparateRuns(LmHeadPrecision head, int slots)
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 2, MaxSlots = slots, LmHead = head });
        using CpuBackend alone = CpuBackend.Create(model, new BackendOptions { Threads = 2, LmHead = head });
        int vocab = model.Config.VocabSize;
        var all = new float[slots * vocab];
        var one = new float[vocab];
        var prompts = new SequenceChunk[slots];
        var steps = new SequenceChunk[slots];
        for (int s = 0; s < slots; s++)
        {
            prompts[s] = new SequenceChunk(s, 0, new[] { 5 + s, 17 + 3 * s, 99 + 7 * s });
            steps[s] = new SequenceChunk(s, 3, new[] { 10 + s });
        }

        backend.Forward(prompts, all);
        backend.Forward(steps, all);
        for (int s = 0; s < slots; s++)
        {
            alone.Forward([prompts[s] with { Slot = 0 }], one);
            alone.Forward([steps[s] with { Slot = 0 }], one);
            Assert.Equal(one, all.AsSpan(s * vocab, vocab).ToArray());
        }
    }

    [Fact]
    public void Forward_PositionPastContext_ThrowsBeforeWork()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 1, ContextLength = 8 });
        var logits = new float[model.Config.VocabSize];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => backend.Forward([new SequenceChunk(0, 4, new[] { 1, 2, 3, 4, 5 })], logits));
        Assert.Contains("context length 8", e.Message);
    }

    [Fact]
    public void Forward_BadSlotTokenOrDuplicate_Throws()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 1, MaxSlots = 2 });
        var logits = new float[2 * model.Config.VocabSize];
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.Forward([new SequenceChunk(2, 0, new[] { 1 })], logits));
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.Forward([new SequenceChunk(0, 0, new[] { 300 })], logits));
        Assert.Throws<ArgumentException>(() => backend.Forward([new SequenceChunk(0, 0, new[] { 1 }), new SequenceChunk(0, 1, new[] { 2 })], logits));
        Assert.Throws<ArgumentException>(() => backend.Forward([new SequenceChunk(0, 0, new[] { 1 })], new float[10]));
    }

    [Theory]
    [InlineData(LmHeadPrecision.Int8)]
    [InlineData(LmHeadPrecision.Int4)]
    [InlineData(LmHeadPrecision.Int6)]
    [InlineData(LmHeadPrecision.Source)]
    public void Forward_DecodeSteps_AllocateNothing(LmHeadPrecision head)
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 2, LmHead = head });
        var logits = new float[model.Config.VocabSize];
        var chunk = new SequenceChunk[1];
        var token = new int[] { 3 };
        // Warm up past 16 positions so that every vector path (and any one-time runtime initialisation in it) has run.
        for (int i = 0; i < 24; i++)
        {
            chunk[0] = new SequenceChunk(0, i, token);
            backend.Forward(chunk, logits);
        }

        int call = 0;
        int quiet = SteadyStateAllocations.QuietWindows(
            () =>
            {
                chunk[0] = new SequenceChunk(0, 24 + (call++ % 64), token);   // stays inside the 96-position context
                backend.Forward(chunk, logits);
            },
            callsPerWindow: 20,
            maxWindows: 12);

        Assert.Equal(2, quiet);
    }

    [Fact]
    public void Create_MissingTensor_ThrowsInvalidModelNamingIt()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using var broken = new WithoutTensor(model, "blk.1.ffn_up.weight");
        var e = Assert.Throws<InvalidModelException>(() => CpuBackend.Create(broken, new BackendOptions()));
        Assert.Contains("blk.1.ffn_up.weight", e.Message);
    }

    internal static void AssertClose(double[] expected, ReadOnlySpan<float> actual, string where)
    {
        double range = 0, worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            range = Math.Max(range, Math.Abs(expected[i]));
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        }

        Assert.True(worst <= 0.01 * range, $"{where}: max |diff| {worst} > 1% of max |logit| {range}");
        Assert.Equal(ArgMax(expected), ArgMax(actual.ToArray().Select(v => (double)v).ToArray()));
    }

    private static int ArgMax(double[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++)
        {
            if (v[i] > v[best])
            {
                best = i;
            }
        }

        return best;
    }

    private sealed class WithoutTensor(IModelSource inner, string missing) : IModelSource
    {
        public string Path => inner.Path;

        public string Format => inner.Format;

        public ModelConfig Config => inner.Config;

        public Halo.Core.Tokenization.TokenizerModel? Tokenizer => inner.Tokenizer;

        public IReadOnlyList<TensorView> Tensors => inner.Tensors;

        public bool TryGetTensor(string name, out TensorView tensor)
        {
            tensor = default;
            return name != missing && inner.TryGetTensor(name, out tensor);
        }

        public TensorView GetTensor(string name) =>
            TryGetTensor(name, out TensorView t) ? t : throw new InvalidModelException(Path, $"tensor '{name}' is missing");

        public void Dispose()
        {
        }
    }
}
