using System.Text.Json.Nodes;

namespace Halo.Server.Mcp;

/// <summary>
/// The appliance as the MCP tools and resources see it. Two implementations: <see cref="DaemonAppliance"/>
/// inside the daemon (the same serving path as the OpenAI endpoints) and <see cref="HttpAppliance"/> in
/// <c>halo mcp</c>, which forwards to a running daemon over HTTP. Requests are the OpenAI request bodies
/// (<c>/v1/chat/completions</c>, <c>/v1/completions</c>, <c>/tokenize</c>), so both sides validate them with the
/// daemon's own rules and messages.
/// </summary>
public interface IApplianceApi
{
    /// <summary>Runs one generation through the daemon's scheduler. <paramref name="chat"/>: the request holds
    /// <c>messages</c> (else <c>prompt</c>). <paramref name="onToken"/> gets the running count of generated tokens.
    /// Cancelling <paramref name="cancellationToken"/> stops the generation and frees its slot.</summary>
    Task<GenerationOutcome> GenerateAsync(JsonObject request, bool chat, Func<int, ValueTask> onToken, CancellationToken cancellationToken);

    /// <summary>The <c>/tokenize</c> answer: <c>tokens</c>, <c>count</c>, <c>max_model_len</c>.</summary>
    Task<JsonObject> TokenizeAsync(JsonObject request, CancellationToken cancellationToken);

    /// <summary>The <c>/v1/models</c> answer.</summary>
    Task<JsonObject> ModelsAsync(CancellationToken cancellationToken);

    /// <summary>The daemon's Prometheus exposition text (what <c>/metrics</c> serves).</summary>
    Task<string> MetricsTextAsync(CancellationToken cancellationToken);

    /// <summary>The <c>halo doctor --json</c> report (DESIGN.md section 6).</summary>
    Task<JsonObject> DoctorAsync(CancellationToken cancellationToken);

    /// <summary>The served model: id, backend, context, shapes.</summary>
    Task<JsonObject> ModelInfoAsync(CancellationToken cancellationToken);

    /// <summary>The configuration in force, secrets redacted.</summary>
    Task<JsonObject> ConfigAsync(CancellationToken cancellationToken);
}

/// <summary>How a generation ended.</summary>
public sealed record GenerationOutcome(string Model, string Text, string FinishReason, int PromptTokens, int CompletionTokens);

/// <summary>The appliance refused or failed a request; the message is for the caller (an agent) as it stands.</summary>
public sealed class ApplianceException(string message) : Exception(message);
