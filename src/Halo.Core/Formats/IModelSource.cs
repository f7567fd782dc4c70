using Halo.Core.Models;
using Halo.Core.Tokenization;

namespace Halo.Core.Formats;

/// <summary>
/// A loaded model file of any format (GGUF, safetensors directory, .h1b), memory-mapped. Tensor names are
/// always the llama.cpp GGUF names (<c>token_embd.weight</c>, <c>blk.0.attn_q.weight</c>,
/// <c>blk.0.attn_q.scale</c>, <c>blk.0.attn_sub_norm.weight</c>, <c>output_norm.weight</c>, ...): readers of
/// other formats translate their names on load, so the engine knows one naming only.
/// </summary>
public interface IModelSource : IDisposable
{
    /// <summary>The file or directory the model was read from.</summary>
    string Path { get; }

    /// <summary>"gguf", "safetensors" or "h1b".</summary>
    string Format { get; }

    ModelConfig Config { get; }

    /// <summary>The model's own tokenizer, when the file carries one.</summary>
    TokenizerModel? Tokenizer { get; }

    IReadOnlyList<TensorView> Tensors { get; }

    bool TryGetTensor(string name, out TensorView tensor);

    /// <summary>The tensor, or an <see cref="InvalidModelException"/> naming the file and the missing tensor.</summary>
    TensorView GetTensor(string name);
}
