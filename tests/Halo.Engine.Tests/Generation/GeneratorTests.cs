using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Generation;
using Halo.Engine.Tests.Reference;

namespace Halo.Engine.Tests.Generation;

public sealed class GeneratorTests
{
    private static readonly int[] Prompt = [1, 20, 30, 40];

    [Fact]
    public void Generate_Greedy_EqualsArgMaxOfReference()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 2, Numerics = NumericsMode.LlamaCpp });
        GenerationResult r = new Generator(backend).Generate(Prompt, new GenerationOptions { MaxTokens = 6, KeepFirstLogits = true });

        var reference = new ReferenceModel(model, ActivationScaling.PerBlock, llamaCppNumerics: true);
        double[] logits = [];
        foreach (int t in Prompt)
        {
            logits = reference.Step(t);
        }

        var expected = new List<int>();
        for (int i = 0; i < 6; i++)
        {
            int next = Array.IndexOf(logits, logits.Max());
            expected.Add(next);
            logits = reference.Step(next);
        }

        Assert.Equal(expected, r.Tokens);
        Assert.Equal(FinishReason.Length, r.FinishReason);
        Assert.Equal(model.Config.VocabSize, r.FirstLogits!.Length);
        Assert.Equal(expected[0], Array.IndexOf(r.FirstLogits, r.FirstLogits.Max()));
    }

    [Fact]
    public void Generate_StopToken_EndsWithStopAndExcludesIt()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 1 });
        var generator = new Generator(backend);
        GenerationResult free = generator.Generate(Prompt, new GenerationOptions { MaxTokens = 5 });
        GenerationResult stopped = generator.Generate(Prompt, new GenerationOptions { MaxTokens = 5, StopTokens = [free.Tokens[2]] });
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(free.Tokens.Take(free.Tokens.ToList().IndexOf(free.Tokens[2])), stopped.Tokens);
    }

    [Fact]
    public void Generate_StopString_CutsTextBeforeIt()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 1 });
        var generator = new Generator(backend);
        static string Decode(IReadOnlyList<int> ids) => string.Join(" ", ids.Select(i => $"t{i}"));
        GenerationResult free = generator.Generate(Prompt, new GenerationOptions { MaxTokens = 6, Decode = Decode });
        string stop = $"t{free.Tokens[3]}";
        GenerationResult stopped = generator.Generate(Prompt, new GenerationOptions { MaxTokens = 6, Decode = Decode, StopStrings = [stop] });
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.DoesNotContain(stop, stopped.Text);
        Assert.StartsWith(stopped.Text!, free.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_PromptFillsContext_ThrowsContextOverflow()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 1, ContextLength = 4 });
        var e = Assert.Throws<ContextOverflowException>(() => new Generator(backend).Generate(Prompt, new GenerationOptions()));
        Assert.Contains("context holds 4", e.Message);
    }

    [Fact]
    public void Generate_ContextFillsDuringGeneration_EndsWithLength()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 1, ContextLength = 7 });
        GenerationResult r = new Generator(backend).Generate(Prompt, new GenerationOptions { MaxTokens = 100 });
        Assert.Equal(3, r.Tokens.Count);
        Assert.Equal(FinishReason.Length, r.FinishReason);
    }

    [Fact]
    public async Task GenerateAsync_Greedy_StreamsSameTokensAsGenerate()
    {
        using var model = new TestModelSource(TestModelSource.TinyConfig());
        using CpuBackend backend = CpuBackend.Create(model, new BackendOptions { Threads = 1 });
        var generator = new Generator(backend);
        GenerationResult sync = generator.Generate(Prompt, new GenerationOptions { MaxTokens = 4 });
        var streamed = new List<int>();
        await foreach (int t in generator.GenerateAsync(Prompt, new GenerationOptions { MaxTokens = 4 }))
        {
            streamed.Add(t);
        }

        Assert.Equal(sync.Tokens, streamed);
    }
}
