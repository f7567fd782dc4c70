using System.Globalization;
using System.Net;
using Halo.Core.Models;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;

namespace Halo.Reliability.Tests.Infrastructure;

/// <summary>
/// One real <c>halo-server</c> process serving the tiny synthetic model on a loopback port, with its own HOME
/// and environment; started by the constructor, killed (if still alive) on dispose.
/// </summary>
internal sealed class ServedDaemon : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private readonly TempDir _home = new();

    public ServedDaemon(IDictionary<string, string>? environment = null, string? notifySocket = null)
    {
        var env = new Dictionary<string, string>(environment ?? new Dictionary<string, string>());
        if (notifySocket is not null)
        {
            env["NOTIFY_SOCKET"] = notifySocket;
        }

        Process = DaemonProcess.Start(["--model", TinyModel.Path, "--listen", "127.0.0.1:0"], _home.Path, env);
        Url = Process.WaitForUrl(StartTimeout);
        Client = new HttpClient { BaseAddress = Url, Timeout = TimeSpan.FromSeconds(60) };
    }

    public DaemonProcess Process { get; }

    public Uri Url { get; }

    public HttpClient Client { get; }

    public string Home => _home.Path;

    /// <summary>VmRSS of the daemon in bytes.</summary>
    public long Rss => Process.Process.HasExited
        ? throw new InvalidOperationException($"the daemon died (exit {Process.Process.ExitCode}): {Tail(Process.Output)}")
        : Process.Memory().Rss;

    private static string Tail(string text) => text.Length > 6000 ? text[^6000..] : text;

    /// <summary>The value of an unlabelled gauge or counter line on /metrics, such as <c>halo_requests_running</c>.</summary>
    public async Task<double> MetricAsync(string name)
    {
        string text = await Client.GetStringAsync("metrics");
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith(name + " ", StringComparison.Ordinal))
            {
                return double.Parse(line.AsSpan(name.Length + 1), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"{name} is not on /metrics");
    }

    /// <summary>Asserts the process is alive, /health answers 200 and no request holds a slot.</summary>
    public async Task AssertHealthyAndIdleAsync()
    {
        Assert.False(Process.Process.HasExited, "the daemon died: " + Tail(Process.Output));
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("health")).StatusCode);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        double running;
        while ((running = await MetricAsync("halo_requests_running")) != 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.True(running == 0, $"halo_requests_running is {running} with no client left: a leaked slot");
    }

    public void Dispose()
    {
        Client.Dispose();
        Process.Dispose();
        _home.Dispose();
    }
}

/// <summary>The long variants (minutes of load, 100,000 fuzz cases) run only with HALO_LONG_TESTS=1.</summary>
internal static class LongTests
{
    public static bool Enabled => Environment.GetEnvironmentVariable("HALO_LONG_TESTS") == "1";

    public static int Int(string variable, int normal, int longRun) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
        : Enabled ? longRun : normal;
}
