using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Halo.Server.Mcp;

/// <summary>
/// The appliance as an MCP server, one definition for both transports: the daemon's <c>/mcp</c> (streamable
/// HTTP, behind the API keys like every other path) and <c>halo mcp</c> (stdio, forwarding to the daemon).
/// </summary>
public static class HaloMcp
{
    public const string Path = "/mcp";

    /// <summary>Server info, capabilities and the tool and resource handlers, all answered by <paramref name="appliance"/>.</summary>
    public static void Configure(McpServerOptions options, IApplianceApi appliance)
    {
        options.ServerInfo = new Implementation
        {
            Name = "halo",
            Title = "Halo BitNet appliance",
            Version = typeof(HaloMcp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0",
        };
        options.ServerInstructions =
            "Halo serves a BitNet b1.58 ternary LLM on this machine. Use `generate` for text, `tokenize` to count tokens, "
            + "`models_list` for the served model, `doctor` to diagnose the machine, `metrics` for live load. "
            + $"Resources {McpResources.ModelUri} and {McpResources.ConfigUri} describe the model and the configuration.";
        options.Capabilities ??= new ServerCapabilities();
        options.Capabilities.Tools = new ToolsCapability { ListChanged = false };
        options.Capabilities.Resources = new ResourcesCapability { ListChanged = false, Subscribe = false };
        options.Handlers.ListToolsHandler = (_, _) => ValueTask.FromResult(new ListToolsResult { Tools = McpTools.List() });
        options.Handlers.CallToolHandler = (request, cancellationToken) => McpTools.CallAsync(appliance, request, cancellationToken);
        options.Filters.Message.IncomingFilters.Add(McpTools.RejectUnknownTools);
        options.Handlers.ListResourcesHandler = (_, _) => ValueTask.FromResult(new ListResourcesResult { Resources = McpResources.List() });
        options.Handlers.ReadResourceHandler = (request, cancellationToken) => McpResources.ReadAsync(appliance, request.Params?.Uri, cancellationToken);
    }

    /// <summary>The daemon's MCP services: the in-process appliance and the streamable HTTP transport.</summary>
    public static IServiceCollection AddHaloMcp(this IServiceCollection services)
    {
        services.AddSingleton(DoctorCommandLine.Default());
        services.AddSingleton<DoctorRunner>();
        services.AddSingleton<DaemonAppliance>();
        services.AddOptions<McpServerOptions>().Configure<DaemonAppliance>(Configure);
        services.AddMcpServer().WithHttpTransport();
        return services;
    }

    /// <summary>Maps <c>/mcp</c> (POST for messages, GET for the server's stream, DELETE to end a session).</summary>
    public static IEndpointConventionBuilder MapHaloMcp(this IEndpointRouteBuilder endpoints) => endpoints.MapMcp(Path);
}
