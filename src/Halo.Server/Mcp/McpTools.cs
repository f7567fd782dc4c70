using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Halo.Server.Mcp;

/// <summary>
/// The MCP tools of the appliance: <c>generate</c>, <c>tokenize</c>, <c>models_list</c>, <c>doctor</c>,
/// <c>metrics</c>. Each has an input schema; bad arguments come back as a tool error (<c>isError</c>) with one
/// clear message, so the calling agent can correct itself; an unknown tool name is a protocol error.
/// </summary>
public static class McpTools
{
    /// <summary>A progress notification every this many generated tokens (when the client sent a progress token).</summary>
    public const int ProgressEveryTokens = 8;

    /// <summary>Text content for people and models: quotes and non-ASCII text as they are, not escaped.</summary>
    private static readonly JsonSerializerOptions TextJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly string[] SamplingArguments =
        ["max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "presence_penalty", "frequency_penalty", "repetition_penalty"];

    private static readonly string[] GenerateArguments = ["prompt", "messages", .. SamplingArguments];
    private static readonly string[] TokenizeArguments = ["text", "messages", "add_special"];

    private const string MessagesSchema = """
        {"type": "array", "minItems": 1, "description": "Chat messages, formatted with the model's own chat template.",
         "items": {"type": "object", "required": ["role", "content"], "additionalProperties": false,
                   "properties": {"role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
                                  "content": {"type": "string"}}}}
        """;

    /// <summary>The tools as <c>tools/list</c> answers them.</summary>
    public static IList<Tool> List() =>
    [
        Define("generate", "Generate text",
            "Generate text with the served BitNet model through the daemon's scheduler (continuous batching, the same path as /v1/chat/completions). "
            + "Give either a raw `prompt` or chat `messages`. Sends progress notifications every " + ProgressEveryTokens
            + " tokens when the request carries a progress token; cancelling the request stops the generation and frees its slot.",
            $$$"""
            {"type": "object", "additionalProperties": false,
             "properties": {
               "prompt": {"type": "string", "minLength": 1, "description": "Raw prompt text (BOS added, no chat template). Give prompt or messages, not both."},
               "messages": {{{MessagesSchema}}},
               "max_tokens": {"type": "integer", "minimum": 1, "description": "Most tokens to generate (default: until the context is full or a stop token)."},
               "temperature": {"type": "number", "minimum": 0, "maximum": 2, "description": "0 = greedy."},
               "top_p": {"type": "number", "minimum": 0, "maximum": 1},
               "top_k": {"type": "integer", "minimum": -1, "description": "0 or -1 = off."},
               "min_p": {"type": "number", "minimum": 0, "maximum": 1},
               "seed": {"type": "integer", "description": "Makes sampling reproducible."},
               "stop": {"description": "Up to 16 strings that end the generation.",
                        "anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "maxItems": 16, "items": {"type": "string", "minLength": 1}}]},
               "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
               "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
               "repetition_penalty": {"type": "number", "minimum": 0.01, "maximum": 10}
             }}
            """,
            readOnly: false),
        Define("tokenize", "Tokenize text",
            "Token ids of `text` (BOS added unless add_special is false) or of chat `messages` through the model's chat template, as the served model sees them.",
            $$$"""
            {"type": "object", "additionalProperties": false,
             "properties": {
               "text": {"type": "string", "description": "Text to tokenize. Give text or messages, not both."},
               "messages": {{{MessagesSchema}}},
               "add_special": {"type": "boolean", "description": "Add BOS to text (default true)."}
             }}
            """),
        Define("models_list", "List models", "The model this daemon serves: id, context length, backend, whether its weights are random (synthetic).",
            """{"type": "object", "additionalProperties": false, "properties": {}}"""),
        Define("doctor", "Check the machine",
            "Runs `halo doctor`: OS, kernel, GPU, ROCm, OpenCL, units free of interpreter runtimes, service, endpoint, model, disk. "
            + "Returns every check (id, status ok/warn/fail/skip, finding, fix hint) and a summary.",
            """{"type": "object", "additionalProperties": false, "properties": {}}"""),
        Define("metrics", "Live serving counters",
            "A short summary of the daemon's live metrics: requests, prompt and generated tokens, generations running and waiting, KV cache use, time to first token.",
            """{"type": "object", "additionalProperties": false, "properties": {}}"""),
    ];

    /// <summary>The names <see cref="List"/> defines.</summary>
    public static readonly string[] Names = ["generate", "tokenize", "models_list", "doctor", "metrics"];

    /// <summary>The protocol error (invalid params, as the MCP specification asks) for a tool this server lacks.</summary>
    public static McpProtocolException UnknownTool(string name) =>
        new($"unknown tool '{name}'; this server has {string.Join(", ", Names)}", McpErrorCode.InvalidParams);

    /// <summary>
    /// An incoming-message filter that answers <c>tools/call</c> of an unknown tool with the protocol error before
    /// the call reaches the SDK's tool pipeline. That pipeline logs every exception out of a tool handler at error
    /// level with a stack trace; a client naming a tool that does not exist is the client's mistake, not ours.
    /// </summary>
    public static McpMessageFilter RejectUnknownTools => next => async (context, cancellationToken) =>
    {
        if (context.JsonRpcMessage is JsonRpcRequest { Method: RequestMethods.ToolsCall, Params: JsonObject parameters }
            && parameters["name"] is JsonValue nameValue && nameValue.TryGetValue(out string? name)
            && Array.IndexOf(Names, name) < 0)
        {
            throw UnknownTool(name);
        }

        await next(context, cancellationToken).ConfigureAwait(false);
    };

    /// <summary>Runs the tool the request names against <paramref name="appliance"/>.</summary>
    public static async ValueTask<CallToolResult> CallAsync(IApplianceApi appliance, RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        CallToolRequestParams call = request.Params ?? throw new McpProtocolException("tools/call without params", McpErrorCode.InvalidParams);
        IDictionary<string, JsonElement> arguments = call.Arguments ?? new Dictionary<string, JsonElement>();
        try
        {
            return call.Name switch
            {
                "generate" => await GenerateAsync(appliance, arguments, request, cancellationToken).ConfigureAwait(false),
                "tokenize" => Structured(await appliance.TokenizeAsync(TokenizeRequest(arguments), cancellationToken).ConfigureAwait(false)),
                "models_list" => Structured(await NoArguments("models_list", arguments, appliance.ModelsAsync, cancellationToken).ConfigureAwait(false)),
                "doctor" => Structured(await NoArguments("doctor", arguments, appliance.DoctorAsync, cancellationToken).ConfigureAwait(false)),
                "metrics" => Structured(MetricsSummary.FromPrometheusText(await NoArguments("metrics", arguments, appliance.MetricsTextAsync, cancellationToken).ConfigureAwait(false))),
                _ => throw UnknownTool(call.Name),
            };
        }
        catch (ApplianceException e)
        {
            return Error($"{call.Name}: {e.Message}");
        }
    }

    private static async Task<CallToolResult> GenerateAsync(IApplianceApi appliance, IDictionary<string, JsonElement> arguments, RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        CheckNames(arguments, GenerateArguments);
        bool chat = ExactlyOne(arguments, "prompt", "messages");
        var body = new JsonObject();
        foreach (string name in GenerateArguments)
        {
            if (arguments.TryGetValue(name, out JsonElement value))
            {
                body[name] = JsonNode.Parse(value.GetRawText());
            }
        }

        float? total = arguments.TryGetValue("max_tokens", out JsonElement max) && max.ValueKind == JsonValueKind.Number && max.TryGetInt32(out int m) ? m : null;
        Func<int, ValueTask> onToken = request.Params?.ProgressToken is { } token
            ? count => count % ProgressEveryTokens == 0
                ? new ValueTask(request.Server.NotifyProgressAsync(token, new ProgressNotificationValue { Progress = count, Total = total, Message = $"{count} tokens generated" }, cancellationToken: cancellationToken))
                : ValueTask.CompletedTask
            : _ => ValueTask.CompletedTask;

        GenerationOutcome outcome = await appliance.GenerateAsync(body, chat, onToken, cancellationToken).ConfigureAwait(false);
        var structured = new JsonObject
        {
            ["model"] = outcome.Model,
            ["text"] = outcome.Text,
            ["finish_reason"] = outcome.FinishReason,
            ["usage"] = new JsonObject
            {
                ["prompt_tokens"] = outcome.PromptTokens,
                ["completion_tokens"] = outcome.CompletionTokens,
                ["total_tokens"] = outcome.PromptTokens + outcome.CompletionTokens,
            },
        };
        return new CallToolResult
        {
            Content = [new TextContentBlock { Text = outcome.Text }],
            StructuredContent = ToElement(structured),
            IsError = false,
        };
    }

    /// <summary>The tool's <c>text</c> is the daemon's <c>content</c>; messages and add_special pass as they are.</summary>
    private static JsonObject TokenizeRequest(IDictionary<string, JsonElement> arguments)
    {
        CheckNames(arguments, TokenizeArguments);
        ExactlyOne(arguments, "text", "messages");
        var body = new JsonObject();
        foreach ((string name, JsonElement value) in arguments)
        {
            body[name == "text" ? "content" : name] = JsonNode.Parse(value.GetRawText());
        }

        if (arguments.TryGetValue("text", out JsonElement text) && text.ValueKind != JsonValueKind.String)
        {
            throw new ApplianceException($"$.text: expected a string, got {text.ValueKind.ToString().ToLowerInvariant()}");
        }

        return body;
    }

    private static Task<T> NoArguments<T>(string tool, IDictionary<string, JsonElement> arguments, Func<CancellationToken, Task<T>> run, CancellationToken cancellationToken)
    {
        CheckNames(arguments, []);
        return run(cancellationToken);
    }

    private static void CheckNames(IDictionary<string, JsonElement> arguments, string[] allowed)
    {
        foreach (string name in arguments.Keys)
        {
            if (Array.IndexOf(allowed, name) < 0)
            {
                throw new ApplianceException(allowed.Length == 0
                    ? $"unknown argument '{name}'; this tool takes no arguments"
                    : $"unknown argument '{name}'; expected {string.Join(", ", allowed)}");
            }
        }
    }

    /// <summary>True when <paramref name="second"/> is the one given.</summary>
    private static bool ExactlyOne(IDictionary<string, JsonElement> arguments, string first, string second)
    {
        bool hasFirst = arguments.TryGetValue(first, out JsonElement a) && a.ValueKind != JsonValueKind.Null;
        bool hasSecond = arguments.TryGetValue(second, out JsonElement b) && b.ValueKind != JsonValueKind.Null;
        return (hasFirst, hasSecond) switch
        {
            (true, false) => false,
            (false, true) => true,
            (true, true) => throw new ApplianceException($"give either '{first}' or '{second}', not both"),
            _ => throw new ApplianceException($"missing '{first}' or '{second}'"),
        };
    }

    /// <summary>Schemas keep <c>oneOf</c> off the top level (some clients reject it there); "prompt or messages"
    /// is said in the descriptions and checked here.</summary>
    private static Tool Define(string name, string title, string description, string inputSchema, bool readOnly = true) => new()
    {
        Name = name,
        Title = title,
        Description = description,
        InputSchema = JsonDocument.Parse(inputSchema).RootElement.Clone(),
        Annotations = new ToolAnnotations { Title = title, ReadOnlyHint = readOnly, DestructiveHint = false, OpenWorldHint = false },
    };

    /// <summary>A result whose structured content is <paramref name="value"/>, with the same JSON as text for
    /// clients that read only text.</summary>
    private static CallToolResult Structured(JsonObject value) => new()
    {
        Content = [new TextContentBlock { Text = value.ToJsonString(TextJson) }],
        StructuredContent = ToElement(value),
        IsError = false,
    };

    private static CallToolResult Error(string message) => new()
    {
        Content = [new TextContentBlock { Text = message }],
        IsError = true,
    };

    private static JsonElement ToElement(JsonNode node) => JsonDocument.Parse(node.ToJsonString()).RootElement.Clone();
}
