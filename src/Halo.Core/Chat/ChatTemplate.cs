using System.Text;
using Halo.Core.Tokenization;

namespace Halo.Core.Chat;

/// <summary>
/// A model's chat prompt format, recognised from its <c>tokenizer.chat_template</c> (Jinja) and rendered by
/// code, not by a template engine. <see cref="Encode"/> produces token ids directly: the template's
/// structural tokens (BOS, headers, &lt;|eot_id|&gt;) are emitted as special token ids, and message text is
/// tokenized with special-token parsing off, so a user who writes "&lt;|eot_id|&gt;" in a message gets those
/// characters, never an end of turn. <see cref="Render"/> gives the same prompt as text, for display.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>LLaMA-3 instruct's template (as in its tokenizer_config.json); synthetic vocabularies carry it.</summary>
    public const string Llama3TemplateText =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    /// <summary>
    /// BitNet b1.58 2B4T's template (microsoft/bitnet-b1.58-2B-4T tokenizer_config.json). It writes no BOS;
    /// the model's tokenizer adds one (its Hugging Face example prompt starts with &lt;|begin_of_text|&gt;).
    /// </summary>
    public const string BitNetTemplateText =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

    private const string StartHeader = "<|start_header_id|>";
    private const string EndHeader = "<|end_header_id|>";
    private const string EndOfTurn = "<|eot_id|>";

    private readonly string? _bosText;
    private readonly int _bosId;
    private readonly int _startHeaderId;
    private readonly int _endHeaderId;
    private readonly int _endOfTurnId;

    private ChatTemplate(ChatTemplateKind kind, TokenizerModel model, int startHeaderId, int endHeaderId, int endOfTurnId)
    {
        Kind = kind;
        _bosId = model.BosId;
        _bosText = model.BosId >= 0 ? model.Tokens[model.BosId] : null;
        _startHeaderId = startHeaderId;
        _endHeaderId = endHeaderId;
        _endOfTurnId = endOfTurnId;

        var stops = new List<int>(2);
        foreach (var id in (ReadOnlySpan<int>)[model.EosId, model.EotId, endOfTurnId])
        {
            if (id >= 0 && !stops.Contains(id))
            {
                stops.Add(id);
            }
        }

        StopTokenIds = stops;
    }

    public ChatTemplateKind Kind { get; }

    /// <summary>Tokens a chat generation stops on: EOS and end of turn.</summary>
    public IReadOnlyList<int> StopTokenIds { get; }

    /// <summary>
    /// The template for <paramref name="model"/>: from <paramref name="templateOverride"/> when given (a name,
    /// "llama3" or "bitnet", or a Jinja template), else from the model's chat_template, else LLaMA-3 when the
    /// vocabulary has its header tokens. Throws <see cref="NotSupportedException"/> for a template Halo cannot
    /// render, naming it, and when the vocabulary lacks the tokens the template needs.
    /// </summary>
    public static ChatTemplate FromModel(TokenizerModel model, string? templateOverride = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var startHeader = IndexOf(model.Tokens, StartHeader);
        var endHeader = IndexOf(model.Tokens, EndHeader);
        var endOfTurn = IndexOf(model.Tokens, EndOfTurn);
        var templateText = templateOverride ?? model.ChatTemplate;

        ChatTemplateKind kind;
        if (string.IsNullOrWhiteSpace(templateText))
        {
            kind = startHeader >= 0 && endHeader >= 0
                ? ChatTemplateKind.Llama3
                : throw new NotSupportedException("The model has no chat template and its vocabulary lacks LLaMA-3's header tokens; set a chat template (llama3 or bitnet).");
        }
        else
        {
            kind = Recognise(templateText) ?? throw new NotSupportedException(
                $"Chat template not recognised (Halo renders LLaMA-3 and BitNet 2B4T templates; override with 'llama3' or 'bitnet'): {Abbreviate(templateText)}");
        }

        if (endOfTurn < 0 || (kind == ChatTemplateKind.Llama3 && (startHeader < 0 || endHeader < 0)))
        {
            throw new NotSupportedException($"The {kind} chat template needs tokens the vocabulary does not have ({EndOfTurn}{(kind == ChatTemplateKind.Llama3 ? $", {StartHeader}, {EndHeader}" : "")}).");
        }

        return new ChatTemplate(kind, model, startHeader, endHeader, endOfTurn);
    }

    /// <summary>Which format a chat template (Jinja text or a name) is, or null if Halo does not know it.</summary>
    public static ChatTemplateKind? Recognise(string templateText)
    {
        ArgumentNullException.ThrowIfNull(templateText);
        var name = templateText.Trim();
        if (name.Equals("llama3", StringComparison.OrdinalIgnoreCase))
        {
            return ChatTemplateKind.Llama3;
        }

        if (name.Equals("bitnet", StringComparison.OrdinalIgnoreCase))
        {
            return ChatTemplateKind.BitNet;
        }

        if (templateText.Contains(StartHeader, StringComparison.Ordinal) && templateText.Contains(EndHeader, StringComparison.Ordinal))
        {
            return ChatTemplateKind.Llama3;
        }

        // 2B4T: "message['role'] | capitalize + ': ' + ... + '<|eot_id|>'" and the prompt 'Assistant: '.
        if (templateText.Contains(EndOfTurn, StringComparison.Ordinal) && templateText.Contains("'Assistant: '", StringComparison.Ordinal)
            && (templateText.Contains("capitalize", StringComparison.Ordinal) || templateText.Contains("'User: '", StringComparison.Ordinal)))
        {
            return ChatTemplateKind.BitNet;
        }

        return null;
    }

    /// <summary>
    /// The prompt as token ids: BOS (when the model has one), each message, then the assistant's turn
    /// opening when <paramref name="addGenerationPrompt"/> is set. Message text never yields special tokens.
    /// </summary>
    public int[] Encode(BpeTokenizer tokenizer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(messages);
        CheckTokenizer(tokenizer);
        var writer = new PromptWriter(tokenizer);
        Write(ref writer, messages, addGenerationPrompt);
        return writer.ToIds();
    }

    /// <summary>The same prompt as text, special tokens written out (for display and logs).</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var writer = new PromptWriter(null);
        Write(ref writer, messages, addGenerationPrompt);
        return writer.ToText();
    }

    private void Write(ref PromptWriter writer, IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt)
    {
        if (_bosText is not null)
        {
            writer.Special(_bosId, _bosText);
        }

        foreach (var message in messages)
        {
            ArgumentNullException.ThrowIfNull(message);
            var role = message.Role ?? throw new ArgumentException("A chat message has no role.", nameof(messages));
            var content = (message.Content ?? "").Trim(); // Jinja's "| trim"
            if (Kind == ChatTemplateKind.Llama3)
            {
                writer.Special(_startHeaderId, StartHeader);
                writer.Text(role);
                writer.Special(_endHeaderId, EndHeader);
                writer.Text("\n\n");
                writer.Text(content);
            }
            else
            {
                writer.Text(Capitalize(role));
                writer.Text(": ");
                writer.Text(content);
            }

            writer.Special(_endOfTurnId, EndOfTurn);
        }

        if (addGenerationPrompt)
        {
            if (Kind == ChatTemplateKind.Llama3)
            {
                writer.Special(_startHeaderId, StartHeader);
                writer.Text("assistant");
                writer.Special(_endHeaderId, EndHeader);
                writer.Text("\n\n");
            }
            else
            {
                writer.Text("Assistant: ");
            }
        }
    }

    // The template was resolved against a model's token list; the tokenizer must be of the same vocabulary.
    private void CheckTokenizer(BpeTokenizer tokenizer)
    {
        if (_endOfTurnId >= tokenizer.VocabularySize || tokenizer.TokenText(_endOfTurnId) != EndOfTurn
            || (_bosId >= 0 && (_bosId >= tokenizer.VocabularySize || tokenizer.TokenText(_bosId) != _bosText)))
        {
            throw new ArgumentException("The tokenizer is not of the model this chat template was made for.", nameof(tokenizer));
        }
    }

    // Jinja's capitalize: first character upper case, the rest lower case.
    private static string Capitalize(string role) =>
        role.Length == 0 ? role : string.Concat(char.ToUpperInvariant(role[0]).ToString(), role[1..].ToLowerInvariant());

    private static int IndexOf(IReadOnlyList<string> tokens, string text)
    {
        // Special tokens sit at the end of the vocabulary: search backwards.
        for (var id = tokens.Count - 1; id >= 0; id--)
        {
            if (string.Equals(tokens[id], text, StringComparison.Ordinal))
            {
                return id;
            }
        }

        return -1;
    }

    private static string Abbreviate(string text) => text.Length <= 120 ? text : string.Concat(text.AsSpan(0, 120), "...");

    /// <summary>
    /// Collects the prompt either as ids (text runs are tokenized as a whole between special tokens, exactly
    /// as llama.cpp tokenizes a rendered prompt) or as display text.
    /// </summary>
    private struct PromptWriter(BpeTokenizer? tokenizer)
    {
        private readonly List<int> _ids = [];
        private readonly StringBuilder _text = new();

        public readonly void Text(string text) => _text.Append(text);

        public readonly void Special(int id, string text)
        {
            if (tokenizer is null)
            {
                _text.Append(text);
                return;
            }

            FlushText();
            _ids.Add(id);
        }

        public readonly int[] ToIds()
        {
            FlushText();
            return _ids.ToArray();
        }

        public readonly string ToText() => _text.ToString();

        private readonly void FlushText()
        {
            if (_text.Length == 0)
            {
                return;
            }

            tokenizer!.Encode(_text.ToString(), _ids, addSpecial: false, parseSpecial: false);
            _text.Clear();
        }
    }
}
