using Halo.Core.Formats;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Generation;

namespace Halo.Installer.Convert;

/// <summary>
/// The end-to-end proof of a conversion: both models, run by the same CPU engine, must produce the same greedy
/// tokens for the same prompt. The prompt is fixed token ids (BOS, then ids spread over the vocabulary), so the
/// check does not depend on the tokenizer and works for random-weight models too.
/// </summary>
public static class GreedyCheck
{
    /// <summary>The greedy continuation of <paramref name="model"/> for the fixed prompt.</summary>
    public static IReadOnlyList<int> Run(IModelSource model, int tokens, int threads)
    {
        var options = new BackendOptions
        {
            Kind = BackendKind.Cpu,
            Threads = threads,
            ContextLength = Math.Min(model.Config.ContextLength, 256),
        };
        using CpuBackend backend = CpuBackend.Create(model, options);
        GenerationResult result = new Generator(backend).Generate(Prompt(model), new GenerationOptions { MaxTokens = tokens });
        return result.Tokens;
    }

    /// <summary>[BOS?, vocab/7, vocab/5, vocab/3, vocab/2]: valid ids for any vocabulary of 8 or more tokens.</summary>
    public static int[] Prompt(IModelSource model)
    {
        int vocab = model.Config.VocabSize;
        int bos = model.Tokenizer?.BosId ?? -1;
        int[] body = [vocab / 7, vocab / 5, vocab / 3, vocab / 2];
        return bos >= 0 ? [bos, .. body] : body;
    }
}
