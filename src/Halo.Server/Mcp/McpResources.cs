using System.Text.Json.Nodes;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Halo.Server.Mcp;

/// <summary>The MCP resources: the served model's metadata and the configuration in force (secrets redacted).</summary>
public static class McpResources
{
    public const string ModelUri = "halo://model";
    public const string ConfigUri = "halo://config";

    public static IList<Resource> List() =>
    [
        new Resource
        {
            Uri = ModelUri,
            Name = "model",
            Title = "Served model",
            Description = "The model the daemon serves: id, backend and device, slots, context length, architecture and shapes.",
            MimeType = "application/json",
        },
        new Resource
        {
            Uri = ConfigUri,
            Name = "config",
            Title = "Configuration",
            Description = "The configuration in force, keyed as in halo.yaml; API key hashes and keys are redacted.",
            MimeType = "application/json",
        },
    ];

    public static async ValueTask<ReadResourceResult> ReadAsync(IApplianceApi appliance, string? uri, CancellationToken cancellationToken)
    {
        Func<CancellationToken, Task<JsonObject>> read = uri switch
        {
            ModelUri => appliance.ModelInfoAsync,
            ConfigUri => appliance.ConfigAsync,
            _ => throw new McpProtocolException($"no resource '{uri}'; this server has {ModelUri} and {ConfigUri}", McpErrorCode.ResourceNotFound),
        };
        JsonObject value;
        try
        {
            value = await read(cancellationToken).ConfigureAwait(false);
        }
        catch (ApplianceException e)
        {
            throw new McpProtocolException($"{uri}: {e.Message}", McpErrorCode.InternalError);
        }

        return new ReadResourceResult
        {
            Contents = [new TextResourceContents { Uri = uri!, MimeType = "application/json", Text = value.ToJsonString() }],
        };
    }
}
