using Halo.Core.Formats;

namespace Halo.Core.Models;

/// <summary>
/// The tensors of a BitNet b1.58 model under llama.cpp's GGUF names, their shapes (ggml order: innermost
/// first) and a validator that every reader runs so that the engine can trust what it is given.
/// </summary>
public static class BitNetTensors
{
    public const string TokenEmbedding = "token_embd.weight";   // [d, vocab]
    public const string OutputNorm = "output_norm.weight";      // [d]
    public const string Output = "output.weight";               // [d, vocab], absent when tied

    /// <summary>The seven ternary projections of a layer, in the order of the forward pass.</summary>
    public static IReadOnlyList<string> Projections { get; } =
        ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];

    /// <summary>The four norm weights of a layer.</summary>
    public static IReadOnlyList<string> Norms { get; } = ["attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"];

    /// <summary><c>blk.{layer}.{part}.weight</c>.</summary>
    public static string Weight(int layer, string part) => $"blk.{layer}.{part}.weight";

    /// <summary><c>blk.{layer}.{part}.scale</c>: the per-tensor scale of a projection, F32[1], 1 when absent.</summary>
    public static string Scale(int layer, string part) => $"blk.{layer}.{part}.scale";

    /// <summary>The shape (ggml order) of a layer tensor.</summary>
    public static long[] Shape(ModelConfig c, string part)
    {
        long d = c.HiddenSize;
        long q = (long)c.HeadCount * c.HeadDim;
        long kv = (long)c.KvHeadCount * c.HeadDim;
        long f = c.FeedForwardSize;
        return part switch
        {
            "attn_norm" or "ffn_norm" => [d],
            "attn_sub_norm" => [q],
            "ffn_sub_norm" => [f],
            "attn_q" => [d, q],
            "attn_k" or "attn_v" => [d, kv],
            "attn_output" => [q, d],
            "ffn_gate" or "ffn_up" => [d, f],
            "ffn_down" => [f, d],
            _ => throw new ArgumentException($"unknown layer tensor '{part}'", nameof(part)),
        };
    }

    /// <summary>
    /// Checks that every tensor the forward pass reads is present with the right shape and a usable type:
    /// norms F32/F16/BF16, scales F32[1], projections any known type. Throws <see cref="InvalidModelException"/>.
    /// </summary>
    public static void Validate(IModelSource model)
    {
        ModelConfig c = model.Config;
        Expect(model, TokenEmbedding, [c.HiddenSize, c.VocabSize], isNorm: false);
        Expect(model, OutputNorm, [c.HiddenSize], isNorm: true);
        if (model.TryGetTensor(Output, out _))
        {
            Expect(model, Output, [c.HiddenSize, c.VocabSize], isNorm: false);
        }

        for (int layer = 0; layer < c.LayerCount; layer++)
        {
            foreach (string norm in Norms)
            {
                Expect(model, Weight(layer, norm), Shape(c, norm), isNorm: true);
            }

            foreach (string projection in Projections)
            {
                Expect(model, Weight(layer, projection), Shape(c, projection), isNorm: false);
                if (model.TryGetTensor(Scale(layer, projection), out TensorView scale)
                    && (scale.Type != GgmlType.F32 || scale.ElementCount != 1))
                {
                    throw new InvalidModelException(model.Path,
                        $"tensor '{scale.Name}' should be F32 [1], is {GgmlTypeInfo.Name(scale.Type)} [{string.Join(", ", scale.Shape)}]");
                }
            }
        }
    }

    private static void Expect(IModelSource model, string name, long[] shape, bool isNorm)
    {
        TensorView t = model.GetTensor(name);
        if (!SameShape(t.Shape, shape))
        {
            throw new InvalidModelException(model.Path,
                $"tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{string.Join(", ", shape)}] from the model config");
        }

        if (isNorm && t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
        {
            throw new InvalidModelException(model.Path, $"tensor '{name}' should be F32, F16 or BF16, is {GgmlTypeInfo.Name(t.Type)}");
        }
    }

    // Trailing 1s do not count: ggml writes [d] and [d, 1] for the same vector.
    private static bool SameShape(long[] actual, long[] expected)
    {
        int n = Math.Max(actual.Length, expected.Length);
        for (int i = 0; i < n; i++)
        {
            long a = i < actual.Length ? actual[i] : 1;
            long e = i < expected.Length ? expected[i] : 1;
            if (a != e)
            {
                return false;
            }
        }

        return true;
    }
}
