using System.CommandLine;
using System.Text.Json.Nodes;
using Halo.Installer.Doctor;
using Halo.Server.Mcp;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Server;

namespace Halo.Installer.Mcp;

/// <summary>
/// `halo mcp [--server URL] [--api-key-file FILE]` (DESIGN.md section 4): the appliance as MCP tools over stdio,
/// for agents that start their tools as child processes (Claude Code, editors, DSPy). Every call is forwarded to
/// the running daemon over HTTP; no engine is loaded here. stdout carries only the protocol; logs go to stderr.
/// </summary>
internal static class McpCommand
{
    public const string DefaultServer = "http://127.0.0.1:8180";
    public const string ApiKeyVariable = "HALO_API_KEY";

    public static Command Create()
    {
        var server = new Option<string>("--server")
        {
            Description = "The daemon's base URL",
            DefaultValueFactory = _ => DefaultServer,
        };
        var keyFile = new Option<string?>("--api-key-file")
        {
            Description = $"A file holding the API key (its first line that is not empty or a # comment); {ApiKeyVariable} works too",
        };
        var command = new Command("mcp", "Serve the appliance as MCP tools over stdio, forwarding to the running daemon");
        command.Options.Add(server);
        command.Options.Add(keyFile);
        command.SetAction(async (parse, cancellationToken) =>
        {
            string url = parse.GetValue(server)!;
            if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out Uri? baseUri) || baseUri.Scheme is not ("http" or "https"))
            {
                Console.Error.WriteLine($"halo mcp: --server {url}: expected an http:// or https:// URL such as {DefaultServer}");
                return Cli.UsageError;
            }

            string? apiKey;
            try
            {
                apiKey = ReadApiKey(parse.GetValue(keyFile));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                Console.Error.WriteLine($"halo mcp: {e.Message}");
                return Cli.UsageError;
            }

            await ServeAsync(baseUri, apiKey, cancellationToken);
            return Cli.Ok;
        });
        return command;
    }

    /// <summary>Runs the stdio server until the client closes stdin or the process is stopped.</summary>
    private static async Task ServeAsync(Uri server, string? apiKey, CancellationToken cancellationToken)
    {
        using ILoggerFactory logging = LoggerFactory.Create(builder => builder
            .SetMinimumLevel(LogLevel.Warning)
            .AddSimpleConsole(console => console.SingleLine = true)
            .AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace));
        using var appliance = new HttpAppliance(server, apiKey, RunDoctorAsync);
        var options = new McpServerOptions();
        HaloMcp.Configure(options, appliance);
        await using McpServer mcp = McpServer.Create(new StdioServerTransport(options, logging), options, logging);
        try
        {
            await mcp.RunAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // SIGINT/SIGTERM: a normal end.
        }
    }

    /// <summary>The doctor runs here, in-process, on this machine (the same checks as `halo doctor --json`).</summary>
    private static async Task<JsonObject> RunDoctorAsync(CancellationToken cancellationToken)
    {
        DoctorReport report = await DoctorReport.RunAsync(new DoctorContext(new SystemRoot("/")), cancellationToken: cancellationToken);
        return report.ToJson();
    }

    /// <summary>The key from --api-key-file, else HALO_API_KEY, else none.</summary>
    private static string? ReadApiKey(string? path)
    {
        if (path is null)
        {
            return Environment.GetEnvironmentVariable(ApiKeyVariable) is { Length: > 0 } key ? key.Trim() : null;
        }

        if (!File.Exists(path))
        {
            throw new IOException($"--api-key-file {path}: no such file");
        }

        foreach (string line in File.ReadLines(path))
        {
            string trimmed = line.Trim();
            if (trimmed.Length > 0 && trimmed[0] != '#')
            {
                return trimmed;
            }
        }

        throw new InvalidDataException($"--api-key-file {path}: holds no key (only empty or # lines)");
    }
}
