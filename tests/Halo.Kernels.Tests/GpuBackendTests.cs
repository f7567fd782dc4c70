using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Sampling;
using Halo.Engine.Tests.Reference;
using Halo.Testing;

namespace Halo.Kernels.Tests;

/// <summary>
/// The whole GPU forward pass against the engine's CPU SIMD backend on the same tiny random model: logits at
/// every step within float rounding, and identical greedy tokens through prefill and decode.
/// </summary>
public abstract class GpuBackendTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    // 9 tokens: matmul tiles of 8 and 1 and the prefill attention kernel (more than 8 tokens); then decode
    // steps through the one-token matmul and the split-KV attention.
    private static readonly int[] Prompt = [5, 17, 250, 3, 99, 42, 7, 128, 64];
    private const int Generated = 4;

    public static TheoryData<GgmlType, NumericsMode, Activation, int, bool> Cases => new()
    {
        { GgmlType.TQ2_0, NumericsMode.Halo, Activation.Silu, 2, false },
        { GgmlType.TQ2_0, NumericsMode.LlamaCpp, Activation.Silu, 2, false },
        { GgmlType.TQ1_0, NumericsMode.Halo, Activation.Relu2, 4, true },
    };

    /// <summary>
    /// Prefill (tiled matmul, prefill attention) then greedy decode (one-token matmul, split-KV attention), both backends fed
    /// the GPU's own choices. Both compute in float with different summation orders, which can flip an int8
    /// activation rounding now and then: 1% of the logit range bounds that, a wrong op gives O(1) errors.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Forward_PrefillThenGreedyDecode_MatchesCpuBackend(GgmlType type, NumericsMode numerics, Activation activation, int kvHeads, bool untied)
    {
        using var model = new TestModelSource(Tiny(activation, kvHeads), type, seed: 7, untiedHead: untied);
        var options = new BackendOptions { Threads = 1, Numerics = numerics };
        using var gpu = new GpuBackend(fixture.Accelerator, model, options, owner: null, "ILGPU CPU accelerator");
        using CpuBackend cpu = CpuBackend.Create(model, options with { LmHead = LmHeadPrecision.Source });   // the GPU's head is the file's F16
        int vocab = model.Config.VocabSize;
        var gpuLogits = new float[vocab];
        var cpuLogits = new float[vocab];

        gpu.Forward([new SequenceChunk(0, 0, Prompt)], gpuLogits);
        cpu.Forward([new SequenceChunk(0, 0, Prompt)], cpuLogits);
        AssertClose(cpuLogits, gpuLogits, "after the prompt");
        var gpuTokens = new List<int>();
        var cpuTokens = new List<int>();
        for (int step = 0; step < Generated; step++)
        {
            int next = ArgMax(gpuLogits);
            gpuTokens.Add(next);
            cpuTokens.Add(ArgMax(cpuLogits));
            gpu.Forward([new SequenceChunk(0, Prompt.Length + step, new[] { next })], gpuLogits);
            cpu.Forward([new SequenceChunk(0, Prompt.Length + step, new[] { next })], cpuLogits);
            AssertClose(cpuLogits, gpuLogits, $"decode step {step}");
        }

        Assert.Equal(cpuTokens, gpuTokens);
    }

    /// <summary>
    /// The tiny preset of <c>halo models synth</c>, written as a GGUF file and memory-mapped back: the greedy
    /// tokens of both backends are identical.
    /// </summary>
    [Fact]
    public void Forward_SyntheticTinyGguf_GreedyTokensEqualCpuBackend()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "tiny.gguf");
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, seed: 11), path);
        using IModelSource model = ModelFile.Open(path);
        var options = new BackendOptions { Threads = 1, ContextLength = 16 };
        using var gpu = new GpuBackend(fixture.Accelerator, model, options, owner: null, "ILGPU CPU accelerator");
        using CpuBackend cpu = CpuBackend.Create(model, options with { LmHead = LmHeadPrecision.Source });
        var gpuLogits = new float[model.Config.VocabSize];
        var cpuLogits = new float[model.Config.VocabSize];
        int[] prompt = [1, 72, 101];
        gpu.Forward([new SequenceChunk(0, 0, prompt)], gpuLogits);
        cpu.Forward([new SequenceChunk(0, 0, prompt)], cpuLogits);
        var gpuTokens = new List<int>();
        var cpuTokens = new List<int>();
        for (int step = 0; step < 3; step++)
        {
            gpuTokens.Add(ArgMax(gpuLogits));
            cpuTokens.Add(ArgMax(cpuLogits));
            gpu.Forward([new SequenceChunk(0, prompt.Length + step, new[] { gpuTokens[^1] })], gpuLogits);
            cpu.Forward([new SequenceChunk(0, prompt.Length + step, new[] { cpuTokens[^1] })], cpuLogits);
        }

        Assert.Equal(cpuTokens, gpuTokens);
        AssertClose(cpuLogits, gpuLogits, "last step");
    }

    [Fact]
    public void Forward_TwoSlotsInOneStep_EqualsEachSlotAlone()
    {
        using var model = new TestModelSource(Tiny(), seed: 3);
        using var batched = new GpuBackend(fixture.Accelerator, model, new BackendOptions { MaxSlots = 2, MaxBatchTokens = 5 }, owner: null, "test");
        using var single = new GpuBackend(fixture.Accelerator, model, new BackendOptions { MaxSlots = 1 }, owner: null, "test");
        int vocab = model.Config.VocabSize;
        int[] other = [9, 8, 7];
        var both = new float[2 * vocab];
        var alone = new float[vocab];

        // the step is cut into batches of 5 tokens: slot 0's prompt finishes in the second batch
        batched.Forward([new SequenceChunk(1, 0, other), new SequenceChunk(0, 0, Prompt[..4])], both);
        single.Forward([new SequenceChunk(0, 0, Prompt[..4])], alone);
        TestData.AssertClose(alone, both.AsSpan(vocab, vocab), 1e-4);
        single.Forward([new SequenceChunk(0, 0, other)], alone);
        TestData.AssertClose(alone, both.AsSpan(0, vocab), 1e-4);
    }

    [Fact]
    public void ForwardSample_GreedyAndTopKOne_ReturnArgMaxOfForwardLogits()
    {
        using var model = new TestModelSource(Tiny(), seed: 5);
        using var a = new GpuBackend(fixture.Accelerator, model, new BackendOptions(), owner: null, "test");
        using var b = new GpuBackend(fixture.Accelerator, model, new BackendOptions { MaxSlots = 2 }, owner: null, "test");
        int vocab = model.Config.VocabSize;
        var logits = new float[2 * vocab];
        var tokens = new int[2];
        a.Forward([new SequenceChunk(0, 0, Prompt[..3])], logits);
        a.Forward([new SequenceChunk(0, 0, Prompt[..2])], logits.AsSpan(vocab));

        // two rows: the device argmax, and a tempered draw limited to one candidate, whatever the uniform
        b.ForwardSample([new SequenceChunk(0, 0, Prompt[..3]), new SequenceChunk(1, 0, Prompt[..2])], SamplingParams.Greedy, [], tokens);
        Assert.Equal([ArgMax(logits[..vocab]), ArgMax(logits[vocab..])], tokens);
        b.ForwardSample([new SequenceChunk(0, 3, Prompt[3..4]), new SequenceChunk(1, 2, Prompt[2..3])], new SamplingParams { Temperature = 1f, TopK = 1 }, [0.99f, 0.5f], tokens);
        a.Forward([new SequenceChunk(0, 3, Prompt[3..4])], logits);
        Assert.Equal(ArgMax(logits[..vocab]), tokens[0]);
    }

    [Fact]
    public void Forward_BadChunks_ThrowClearErrorsAndKeepWorking()
    {
        using var model = new TestModelSource(Tiny(), seed: 2);
        using var gpu = new GpuBackend(fixture.Accelerator, model, new BackendOptions { ContextLength = 8 }, owner: null, "test");
        var logits = new float[model.Config.VocabSize];

        Assert.Contains("context length 8", Assert.Throws<ArgumentOutOfRangeException>(() => gpu.Forward([new SequenceChunk(0, 10, Prompt)], logits)).Message);
        Assert.Contains("slot 3", Assert.Throws<ArgumentOutOfRangeException>(() => gpu.Forward([new SequenceChunk(3, 0, Prompt)], logits)).Message);
        Assert.Contains("token id 300", Assert.Throws<ArgumentOutOfRangeException>(() => gpu.Forward([new SequenceChunk(0, 0, new[] { 300 })], logits)).Message);
        Assert.Throws<ArgumentException>(() => gpu.Forward([new SequenceChunk(0, 0, Prompt)], new float[10]));

        gpu.Forward([new SequenceChunk(0, 0, Prompt[..2])], logits);
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Constructor_MissingTensor_ThrowsInvalidModelNamingIt()
    {
        using var model = new TestModelSource(Tiny(), seed: 2);
        var broken = new RenamedTensorSource(model, "blk.1.ffn_down.weight");

        var error = Assert.Throws<InvalidModelException>(() => new GpuBackend(fixture.Accelerator, broken, new BackendOptions(), owner: null, "test"));
        Assert.Contains("blk.1.ffn_down.weight", error.Message);
    }

    /// <summary>The engine's tiny test shapes with a 256-wide FFN: the simulator runs every lane as a thread, so every matmul counts.</summary>
    private static ModelConfig Tiny(Activation activation = Activation.Silu, int kvHeads = 2) =>
        TestModelSource.TinyConfig(activation, kvHeads) with { FeedForwardSize = 256, ContextLength = 32 };

    private static int ArgMax(float[] logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        return best;
    }

    private static void AssertClose(float[] expected, float[] actual, string where)
    {
        float min = expected.Min(), max = expected.Max();
        double tolerance = 0.01 * (max - min);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{where}: logit {i} is {actual[i]}, the CPU backend says {expected[i]} (tolerance {tolerance})");
        }
    }

    /// <summary>A model source that hides one tensor, as a file missing it would.</summary>
    private sealed class RenamedTensorSource(IModelSource inner, string hidden) : IModelSource
    {
        public string Path => inner.Path;

        public string Format => inner.Format;

        public ModelConfig Config => inner.Config;

        public Halo.Core.Tokenization.TokenizerModel? Tokenizer => inner.Tokenizer;

        public IReadOnlyList<TensorView> Tensors => inner.Tensors.Where(t => t.Name != hidden).ToList();

        public bool TryGetTensor(string name, out TensorView tensor)
        {
            tensor = default;
            return name != hidden && inner.TryGetTensor(name, out tensor);
        }

        public TensorView GetTensor(string name) =>
            TryGetTensor(name, out TensorView t) ? t : throw new InvalidModelException(Path, $"tensor '{name}' is missing");

        public void Dispose()
        {
        }
    }
}

[Collection(CpuSmallWarpAcceleratorCollection.Name)]
public sealed class GpuBackendCpuAcceleratorTests(CpuSmallWarpAcceleratorFixture fixture) : GpuBackendTests<CpuSmallWarpAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class GpuBackendCudaTests(CudaAcceleratorFixture fixture) : GpuBackendTests<CudaAcceleratorFixture>(fixture);
#endif
