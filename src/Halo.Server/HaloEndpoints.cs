using Halo.Server.Mcp;
using Halo.Server.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Prometheus;

namespace Halo.Server;

/// <summary>Every HTTP endpoint of the daemon, mapped in one place (add new surfaces, such as /mcp, here).</summary>
public static class HaloEndpoints
{
    public static void Map(IEndpointRouteBuilder endpoints)
    {
        ServingContext serving = endpoints.ServiceProvider.GetRequiredService<ServingContext>();
        endpoints.MapGet("/v1/models", context => UtilityEndpoints.ModelsAsync(context, serving));
        endpoints.MapPost("/v1/chat/completions", context => ChatCompletionsEndpoint.HandleAsync(context, serving));
        endpoints.MapPost("/v1/completions", context => CompletionsEndpoint.HandleAsync(context, serving));
        endpoints.MapPost("/tokenize", context => UtilityEndpoints.TokenizeAsync(context, serving));
        endpoints.MapPost("/detokenize", context => UtilityEndpoints.DetokenizeAsync(context, serving));
        endpoints.MapGet("/health", context => UtilityEndpoints.HealthAsync(context, serving));
        endpoints.MapGet("/livez", UtilityEndpoints.LivezAsync);
        endpoints.MapMetrics("/metrics", serving.Metrics.Registry);
        endpoints.MapHaloMcp();
    }
}
