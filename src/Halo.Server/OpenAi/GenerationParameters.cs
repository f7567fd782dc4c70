using Halo.Server.Inference;

namespace Halo.Server.OpenAi;

/// <summary>The sampling and stopping fields shared by <c>/v1/chat/completions</c> and <c>/v1/completions</c>,
/// as validated from the request. Null means the client did not say (server defaults apply).</summary>
internal sealed record GenerationParameters
{
    public string? Model { get; init; }

    public bool Stream { get; init; }

    public bool IncludeUsage { get; init; }

    public int? MaxTokens { get; init; }

    public float? Temperature { get; init; }

    public float? TopP { get; init; }

    public int? TopK { get; init; }

    public float? MinP { get; init; }

    public ulong? Seed { get; init; }

    public IReadOnlyList<string> Stop { get; init; } = [];

    public float PresencePenalty { get; init; }

    public float FrequencyPenalty { get; init; }

    public float? RepetitionPenalty { get; init; }

    /// <summary>-1: none; 0: chosen token only; n: with n alternatives.</summary>
    public int TopLogprobs { get; init; } = -1;

    /// <summary><c>ignore_eos</c> (as in vLLM and llama.cpp): the model's end tokens do not end the generation, so it
    /// runs to max_tokens. For benchmarks (<c>halo bench --server</c>); stop strings still apply.</summary>
    public bool IgnoreEos { get; init; }

    public const int MaxStopStrings = 16;
    public const int MaxTopLogprobs = 20;

    /// <summary>Reads the fields both endpoints share. <paramref name="chatLogprobs"/>: chat's boolean
    /// <c>logprobs</c> + <c>top_logprobs</c>; otherwise the legacy integer <c>logprobs</c>.</summary>
    public static GenerationParameters Read(RequestJson json, bool chatLogprobs)
    {
        int? n = (int?)json.Integer("n", 1, 128);
        if (n is > 1)
        {
            throw json.Invalid("n", "only n = 1 is supported (one choice per request)");
        }

        bool stream = json.Bool("stream") ?? false;
        bool includeUsage = false;
        if (json.Object("stream_options") is { } streamOptions)
        {
            if (!stream)
            {
                throw json.Invalid("stream_options", "only allowed when stream is true");
            }

            includeUsage = streamOptions.Bool("include_usage") ?? false;
        }

        long? maxTokens = json.Integer("max_completion_tokens", 1, long.MaxValue) ?? json.Integer("max_tokens", 1, long.MaxValue);

        int topLogprobs = -1;
        if (chatLogprobs)
        {
            bool logprobs = json.Bool("logprobs") ?? false;
            int? top = (int?)json.Integer("top_logprobs", 0, MaxTopLogprobs);
            if (top is not null && !logprobs)
            {
                throw json.Invalid("top_logprobs", "requires logprobs to be true");
            }

            topLogprobs = logprobs ? top ?? 0 : -1;
        }
        else if (json.Integer("logprobs", 0, 5) is { } legacy)
        {
            topLogprobs = (int)legacy;
        }

        return new GenerationParameters
        {
            Model = json.String("model"),
            Stream = stream,
            IncludeUsage = includeUsage,
            MaxTokens = maxTokens is null ? null : (int)Math.Min(maxTokens.Value, int.MaxValue),
            Temperature = (float?)json.Number("temperature", 0, 2),
            TopP = (float?)json.Number("top_p", 0, 1),
            TopK = (int?)json.Integer("top_k", -1, int.MaxValue),
            MinP = (float?)json.Number("min_p", 0, 1),
            Seed = json.Integer("seed", long.MinValue, long.MaxValue) is { } seed ? unchecked((ulong)seed) : null,
            Stop = ReadStop(json),
            PresencePenalty = (float)(json.Number("presence_penalty", -2, 2) ?? 0),
            FrequencyPenalty = (float)(json.Number("frequency_penalty", -2, 2) ?? 0),
            RepetitionPenalty = (float?)json.Number("repetition_penalty", 0.01, 10),
            TopLogprobs = topLogprobs,
            IgnoreEos = json.Bool("ignore_eos") ?? false,
        };
    }

    private static List<string> ReadStop(RequestJson json)
    {
        if (!json.TryGet("stop", out System.Text.Json.JsonElement value))
        {
            return [];
        }

        var stops = new List<string>();
        if (value.ValueKind == System.Text.Json.JsonValueKind.String)
        {
            stops.Add(RequestJson.Text(value, json.Child("stop")));
        }
        else
        {
            List<RequestJson> items = json.Array("stop") ?? throw json.Expected("stop", "a string or an array of strings", value);
            if (items.Count > MaxStopStrings)
            {
                throw json.Invalid("stop", $"at most {MaxStopStrings} stop strings");
            }

            foreach (RequestJson item in items)
            {
                stops.Add(item.AsString());
            }
        }

        for (int i = 0; i < stops.Count; i++)
        {
            if (stops[i].Length == 0)
            {
                throw new InvalidRequestException(stops.Count == 1 && value.ValueKind == System.Text.Json.JsonValueKind.String
                    ? "$.stop: must not be empty" : $"$.stop[{i}]: must not be empty", "stop");
            }
        }

        return stops;
    }
}

/// <summary>One chat message after validation; content parts are joined into text.</summary>
internal sealed record ChatMessage(string Role, string Content);

/// <summary><c>POST /v1/chat/completions</c>.</summary>
internal sealed record ChatCompletionRequest(IReadOnlyList<ChatMessage> Messages, GenerationParameters Parameters)
{
    private static readonly string[] Roles = ["system", "developer", "user", "assistant", "tool"];

    public static ChatCompletionRequest Read(RequestJson json)
    {
        List<RequestJson> items = json.Array("messages") ?? throw json.Missing("messages", "an array of messages");
        if (items.Count == 0)
        {
            throw json.Invalid("messages", "must hold at least one message");
        }

        var messages = new List<ChatMessage>(items.Count);
        foreach (RequestJson item in items)
        {
            if (item.Element.ValueKind != System.Text.Json.JsonValueKind.Object)
            {
                throw new InvalidRequestException($"{item.Path}: expected an object, got {RequestJson.Describe(item.Element.ValueKind)}", RequestJson.ParamOf(item.Path));
            }

            string role = item.RequiredString("role");
            if (Array.IndexOf(Roles, role) < 0)
            {
                throw item.Invalid("role", $"'{role}' is not one of system, developer, user, assistant, tool");
            }

            messages.Add(new ChatMessage(role == "developer" ? "system" : role, ReadContent(item, role)));
        }

        return new ChatCompletionRequest(messages, GenerationParameters.Read(json, chatLogprobs: true));
    }

    /// <summary>The messages through the model's chat template, as prompt token ids.</summary>
    public int[] EncodePrompt(IServedTokenizer tokenizer)
    {
        var messages = new List<(string Role, string Content)>(Messages.Count);
        foreach (ChatMessage message in Messages)
        {
            messages.Add((message.Role, message.Content));
        }

        return tokenizer.EncodeChat(messages);
    }

    /// <summary>content: a string, or an array of parts of which text parts are supported.</summary>
    private static string ReadContent(RequestJson message, string role)
    {
        if (!message.TryGet("content", out System.Text.Json.JsonElement value))
        {
            return role == "assistant" ? "" : throw message.Missing("content", "a string");
        }

        if (value.ValueKind == System.Text.Json.JsonValueKind.String)
        {
            return RequestJson.Text(value, message.Child("content"));
        }

        if (value.ValueKind != System.Text.Json.JsonValueKind.Array)
        {
            throw message.Expected("content", "a string", value);
        }

        var text = new System.Text.StringBuilder();
        foreach (RequestJson part in message.Array("content")!)
        {
            if (part.Element.ValueKind != System.Text.Json.JsonValueKind.Object)
            {
                throw new InvalidRequestException($"{part.Path}: expected a content part object, got {RequestJson.Describe(part.Element.ValueKind)}", RequestJson.ParamOf(part.Path));
            }

            string type = part.RequiredString("type");
            if (type != "text")
            {
                throw part.Invalid("type", $"'{type}' content is not supported by this model (text only)");
            }

            text.Append(part.RequiredString("text"));
        }

        return text.ToString();
    }
}

/// <summary><c>POST /v1/completions</c>: the prompt is a string or token ids.</summary>
internal sealed record CompletionRequest(string? PromptText, int[]? PromptTokens, bool Echo, GenerationParameters Parameters)
{
    public static CompletionRequest Read(RequestJson json, int vocabSize)
    {
        if (!json.TryGet("prompt", out System.Text.Json.JsonElement prompt))
        {
            throw json.Missing("prompt", "a string or an array of token ids");
        }

        string? text = null;
        int[]? tokens = null;
        if (prompt.ValueKind == System.Text.Json.JsonValueKind.String)
        {
            text = RequestJson.Text(prompt, json.Child("prompt"));
        }
        else if (prompt.ValueKind == System.Text.Json.JsonValueKind.Array)
        {
            List<RequestJson> items = json.Array("prompt")!;
            if (items.Count == 1 && items[0].Element.ValueKind == System.Text.Json.JsonValueKind.String)
            {
                text = items[0].AsString();
            }
            else
            {
                tokens = TokenIds.Read(items, vocabSize);
                if (tokens.Length == 0)
                {
                    throw json.Invalid("prompt", "must not be empty");
                }
            }
        }
        else
        {
            throw json.Expected("prompt", "a string or an array of token ids", prompt);
        }

        bool echo = json.Bool("echo") ?? false;
        return new CompletionRequest(text, tokens, echo, GenerationParameters.Read(json, chatLogprobs: false));
    }
}

/// <summary>Arrays of token ids (completions prompt, /detokenize).</summary>
internal static class TokenIds
{
    public static int[] Read(List<RequestJson> items, int vocabSize)
    {
        var ids = new int[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            System.Text.Json.JsonElement e = items[i].Element;
            if (e.ValueKind != System.Text.Json.JsonValueKind.Number || !e.TryGetInt32(out int id))
            {
                throw new InvalidRequestException($"{items[i].Path}: expected a token id (integer), got {(e.ValueKind == System.Text.Json.JsonValueKind.Number ? e.GetRawText() : RequestJson.Describe(e.ValueKind))}", RequestJson.ParamOf(items[i].Path));
            }

            if (id < 0 || id >= vocabSize)
            {
                throw new InvalidRequestException($"{items[i].Path}: token id {id} is outside the vocabulary (0 to {vocabSize - 1})", RequestJson.ParamOf(items[i].Path));
            }

            ids[i] = id;
        }

        return ids;
    }
}
