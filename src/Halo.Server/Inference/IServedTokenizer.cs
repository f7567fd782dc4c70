namespace Halo.Server.Inference;

/// <summary>
/// What the API layer needs from a model's tokenizer: text and chat messages to token ids (message content is
/// always tokenized as text: special tokens in user content are never parsed), token ids to bytes, and the
/// tokens that end a turn. The adapter over Halo.Core's tokenizer implements it.
/// </summary>
internal interface IServedTokenizer
{
    int VocabSize { get; }

    /// <summary>Tokens that end a generation (EOS, EOT).</summary>
    IReadOnlyList<int> StopTokens { get; }

    /// <summary>Plain text; with <paramref name="addBos"/> the model's BOS first when it uses one.</summary>
    int[] Encode(string text, bool addBos);

    /// <summary>Messages through the model's chat template, ending with the assistant turn's header.</summary>
    int[] EncodeChat(IReadOnlyList<(string Role, string Content)> messages);

    /// <summary>The bytes a token stands for when detokenized (control tokens: none).</summary>
    ReadOnlySpan<byte> TokenBytes(int token);
}
