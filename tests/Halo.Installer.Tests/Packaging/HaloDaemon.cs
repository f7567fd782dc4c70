using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Halo.Testing;

namespace Halo.Installer.Tests.Packaging;

/// <summary>
/// The real daemon (`halo serve`, the same host the unit starts) on a loopback port, serving a tiny synthetic
/// model. Stopping sends SIGTERM, as systemd does, so the daemon drains.
/// </summary>
internal sealed class HaloDaemon : IDisposable
{
    private readonly Process _process;

    private HaloDaemon(Process process, int port, string logFile)
    {
        _process = process;
        Port = port;
        LogFile = logFile;
        BaseUrl = $"http://127.0.0.1:{port}";
    }

    public int Port { get; }

    public string BaseUrl { get; }

    public string LogFile { get; }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static HttpClient Client { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>Starts the daemon and waits until /health answers 200 (model loaded and warm).</summary>
    public static async Task<HaloDaemon> StartAsync(string logDir, string name, IReadOnlyDictionary<string, string>? environment = null)
    {
        int port = LoopbackPort.Free();
        string log = Path.Combine(logDir, name + ".log");
        Process process = ProcessRunner.StartLogged(
            PublishedApps.Halo,
            ["serve", "--model", TinyModel.Path, "--listen", $"127.0.0.1:{port}"],
            log,
            environment: environment);
        var daemon = new HaloDaemon(process, port, log);
        await daemon.WaitHealthyAsync(TimeSpan.FromSeconds(90));
        return daemon;
    }

    public async Task WaitHealthyAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"halo serve exited with {_process.ExitCode} before it was healthy:\n{Tail()}");
            }

            try
            {
                using HttpResponseMessage health = await Client.GetAsync(BaseUrl + "/health");
                if (health.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"halo serve on {BaseUrl} not healthy after {timeout}:\n{Tail()}");
    }

    /// <summary>The id /v1/models reports, which requests name.</summary>
    public async Task<string> ModelIdAsync()
    {
        using JsonDocument models = JsonDocument.Parse(await Client.GetStringAsync(BaseUrl + "/v1/models"));
        return models.RootElement.GetProperty("data")[0].GetProperty("id").GetString()!;
    }

    /// <summary>One small completion through <paramref name="baseUrl"/> (the daemon or a proxy in front of it).</summary>
    public static async Task<HttpResponseMessage> CompleteAsync(string baseUrl, string model, string prompt, bool stream = false)
    {
        string body = JsonSerializer.Serialize(new
        {
            model,
            messages = new[] { new { role = "user", content = prompt } },
            max_tokens = 4,
            temperature = 0,
            stream,
        });
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        HttpResponseMessage response = await Client.PostAsync(baseUrl + "/v1/chat/completions", content);
        await response.Content.LoadIntoBufferAsync();
        return response;
    }

    /// <summary>SIGTERM, then wait for the drain (SIGKILL only if it hangs past the unit's TimeoutStopSec).</summary>
    public void Stop() => ProcessRunner.Stop(_process, TimeSpan.FromSeconds(60));

    public string Tail()
    {
        try
        {
            string[] lines = File.ReadAllLines(LogFile);
            return string.Join('\n', lines.Skip(Math.Max(0, lines.Length - 40)));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    public void Dispose()
    {
        Stop();
        _process.Dispose();
    }
}

/// <summary>Free TCP ports on 127.0.0.1 for the daemons, Prometheus, node_exporter and HAProxy under test.</summary>
internal static class LoopbackPort
{
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
