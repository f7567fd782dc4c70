using Halo.Core.Chat;
using Halo.Core.Tokenization;

namespace Halo.Server.Inference;

/// <summary>Halo.Core's byte-level BPE tokenizer and the model's chat template behind <see cref="IServedTokenizer"/>.</summary>
internal sealed class BpeServedTokenizer : IServedTokenizer
{
    private readonly BpeTokenizer _tokenizer;
    private readonly ChatTemplate _template;

    public BpeServedTokenizer(BpeTokenizer tokenizer, ChatTemplate template)
    {
        _tokenizer = tokenizer;
        _template = template;
        var stops = new List<int>(template.StopTokenIds);
        foreach (int id in tokenizer.EndOfGenerationIds)
        {
            if (!stops.Contains(id))
            {
                stops.Add(id);
            }
        }

        StopTokens = stops;
    }

    public int VocabSize => _tokenizer.VocabularySize;

    public IReadOnlyList<int> StopTokens { get; }

    public int[] Encode(string text, bool addBos) => _tokenizer.Encode(text, addSpecial: addBos, parseSpecial: false);

    public int[] EncodeChat(IReadOnlyList<(string Role, string Content)> messages)
    {
        var turns = new List<ChatMessage>(messages.Count);
        foreach ((string role, string content) in messages)
        {
            turns.Add(new ChatMessage(role, content));
        }

        return _template.Encode(_tokenizer, turns, addGenerationPrompt: true);
    }

    /// <summary>Control tokens (and ids past the tokenizer's vocabulary, e.g. padding rows of the LM head) have no text.</summary>
    public ReadOnlySpan<byte> TokenBytes(int token)
    {
        if ((uint)token >= (uint)_tokenizer.VocabularySize || _tokenizer.TokenTypeOf(token) == TokenType.Control)
        {
            return [];
        }

        return _tokenizer.TokenBytes(token);
    }
}
