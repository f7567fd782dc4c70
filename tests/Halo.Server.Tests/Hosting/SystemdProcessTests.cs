using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;
using Xunit.Abstractions;

namespace Halo.Server.Tests.Hosting;

/// <summary>
/// The daemon as systemd runs it: a real child process, a real NOTIFY_SOCKET opened by the test, real SIGTERM,
/// real passed file descriptors (LISTEN_FDS) through systemd-socket-activate.
/// </summary>
public sealed class SystemdProcessTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Start_WithNotifySocket_SendsStatusExtendThenReadyAfterLoadAndStoppingOnSigterm()
    {
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        using var daemon = DaemonProcess.Start(["--model", TinyModel.Path, "--listen", "127.0.0.1:0"], home.Path,
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });

        notify.WaitFor("READY=1", StartTimeout);
        Uri url = daemon.WaitForUrl(StartTimeout);
        using var client = new HttpClient { BaseAddress = url };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("health")).StatusCode);

        daemon.Signal(DaemonProcess.SigTerm);
        int exit = daemon.WaitForExit(TimeSpan.FromSeconds(30));
        notify.WaitFor("STOPPING=1", TimeSpan.FromSeconds(5));

        IReadOnlyList<string> lines = notify.Lines;
        output.WriteLine(string.Join("\n", lines));
        Assert.Equal(0, exit);
        int ready = IndexOf(lines, "READY=1");
        Assert.True(IndexOf(lines, "EXTEND_TIMEOUT_USEC=") < ready, "EXTEND_TIMEOUT_USEC is sent while loading");
        Assert.True(IndexOf(lines, "STATUS=loading model") < ready);
        Assert.True(IndexOf(lines, "STATUS=warming up") < ready, "READY=1 comes after warm-up");
        Assert.True(IndexOf(lines, "STATUS=serving tiny") < ready);
        Assert.True(IndexOf(lines, "STOPPING=1") > ready);
        Assert.True(IndexOf(lines, "STATUS=draining") > ready);
    }

    [Fact]
    public async Task Sigterm_WithStreamsInFlight_FinishesThemWithinDrainThenExitsZero()
    {
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        using var daemon = DaemonProcess.Start(["--model", TinyModel.Path, "--listen", "127.0.0.1:0"], home.Path,
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path, ["HALO_SERVER_DRAIN_TIMEOUT_SECONDS"] = "60", ["HALO_MODEL_CONTEXT_LENGTH"] = "8192" });
        notify.WaitFor("READY=1", StartTimeout);
        using var client = new HttpClient { BaseAddress = daemon.WaitForUrl(StartTimeout), Timeout = TimeSpan.FromSeconds(60) };

        // Three streams long enough to be mid-flight at SIGTERM: the tiny model decodes about 20,000 tokens a
        // second on a quiet machine, so 1000-token streams could end before the metrics poll saw all three.
        Task<string>[] streams = Enumerable.Range(0, 3).Select(i => ReadStream(client, 6000)).ToArray();
        await WaitUntil(async () => (await client.GetStringAsync("metrics")).Contains("halo_requests_running 3", StringComparison.Ordinal));
        daemon.Signal(DaemonProcess.SigTerm);
        await WaitUntil(async () =>
        {
            try
            {
                return (await client.GetAsync("health")).StatusCode == HttpStatusCode.ServiceUnavailable;
            }
            catch (HttpRequestException)
            {
                return true;   // already stopped listening
            }
        });

        string[] bodies = await Task.WhenAll(streams);
        Assert.Equal(0, daemon.WaitForExit(TimeSpan.FromSeconds(60)));
        foreach (string body in bodies)
        {
            Assert.Contains("\"finish_reason\":\"length\"", body, StringComparison.Ordinal);
            Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
            Assert.Contains("\"completion_tokens\":6000", body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Sigterm_StreamsLongerThanDrainTimeout_CutsThemAndExitsZero()
    {
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        using var daemon = DaemonProcess.Start(["--model", TinyModel.Path, "--listen", "127.0.0.1:0"], home.Path,
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path, ["HALO_SERVER_DRAIN_TIMEOUT_SECONDS"] = "0.5", ["HALO_MODEL_CONTEXT_LENGTH"] = "16384" });
        notify.WaitFor("READY=1", StartTimeout);
        using var client = new HttpClient { BaseAddress = daemon.WaitForUrl(StartTimeout), Timeout = TimeSpan.FromSeconds(60) };
        // Long enough that the tiny model (thousands of tokens a second) is still generating at SIGTERM.
        Task<string> stream = ReadStream(client, 16000);
        await WaitUntil(async () => (await client.GetStringAsync("metrics")).Contains("halo_requests_running 1", StringComparison.Ordinal));

        var clock = Stopwatch.StartNew();
        daemon.Signal(DaemonProcess.SigTerm);
        string body = await stream;
        int exit = daemon.WaitForExit(TimeSpan.FromSeconds(30));

        Assert.Equal(0, exit);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"stopped after {clock.Elapsed}");
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
        Assert.DoesNotContain("\"completion_tokens\":16000", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SocketActivation_TwoPassedSockets_ServesOnBoth()
    {
        const string activator = "/usr/bin/systemd-socket-activate";
        Assert.True(File.Exists(activator), $"{activator} is needed (apt-get install systemd); .ci/run installs it");
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        int port1 = FreePort(), port2 = FreePort();
        using var daemon = DaemonProcess.Start(["--model", TinyModel.Path, "--listen", "127.0.0.1:1"], home.Path,
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path },
            wrapper: [activator, "-l", $"127.0.0.1:{port1}", "-l", $"127.0.0.1:{port2}", "-E", "NOTIFY_SOCKET", "-E", "HOME", "-E", "XDG_CACHE_HOME", "-E", "PATH", "-E", "DOTNET_ROOT"]);

        // systemd-socket-activate holds the listening sockets and starts the daemon on the first connection,
        // which waits in the socket's backlog until the daemon serves it: nothing is lost while it starts.
        using (var first = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port1}/"), Timeout = StartTimeout })
        {
            HttpResponseMessage? live = null;
            for (var deadline = DateTime.UtcNow.AddSeconds(10); live is null; await Task.Delay(50))
            {
                try
                {
                    live = await first.GetAsync("livez");
                }
                catch (HttpRequestException) when (DateTime.UtcNow < deadline)
                {
                    // The activator has not bound its sockets yet.
                }
            }

            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }

        notify.WaitFor("READY=1", StartTimeout);
        foreach (int port in new[] { port1, port2 })
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("health")).StatusCode);
            string models = await client.GetStringAsync("v1/models");
            Assert.Contains("\"id\":\"tiny\"", models, StringComparison.Ordinal);
        }

        Assert.Contains("Socket activation: listening on 2 passed socket(s)", daemon.Output, StringComparison.Ordinal);
        daemon.Signal(DaemonProcess.SigTerm);
        Assert.Equal(0, daemon.WaitForExit(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void Watchdog_Enabled_PingsWhileTheLoopRuns()
    {
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        using var daemon = DaemonProcess.Start(["--model", TinyModel.Path, "--listen", "127.0.0.1:0"], home.Path,
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "1000000" });
        TimeSpan ready = notify.WaitFor("READY=1", StartTimeout);

        Thread.Sleep(3000);

        int pings = notify.Messages.Count(m => m.At > ready && m.Message == "WATCHDOG=1");
        Assert.True(pings >= 3, $"{pings} pings in 3 s at a 1 s watchdog (one every 0.5 s expected)");
        daemon.Signal(DaemonProcess.SigTerm);
        Assert.Equal(0, daemon.WaitForExit(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void Start_BadConfigValues_ExitsOneListingEveryError()
    {
        using var home = new TempDir();
        string config = home.File("halo.yaml");
        File.WriteAllText(config, "server:\n  listen: nowhere\nscheduler:\n  slots: 0\n  colour: red\n");
        using var daemon = DaemonProcess.Start(["--config", config], home.Path, new Dictionary<string, string> { ["HALO_MODEL_THREADS"] = "many" });

        int exit = daemon.WaitForExit(TimeSpan.FromSeconds(30));

        Assert.Equal(1, exit);
        string text = daemon.Output;
        Assert.Contains("server.listen[0]", text, StringComparison.Ordinal);
        Assert.Contains("scheduler.slots: 0", text, StringComparison.Ordinal);
        Assert.Contains("unknown key 'scheduler.colour'", text, StringComparison.Ordinal);
        Assert.Contains("HALO_MODEL_THREADS", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Start_CorruptModelFile_ExitsOneWithTheReason()
    {
        using var home = new TempDir();
        string model = home.File("broken.gguf");
        byte[] head = File.ReadAllBytes(TinyModel.Path).AsSpan(0, 4096).ToArray();
        File.WriteAllBytes(model, head);
        using var daemon = DaemonProcess.Start(["--model", model, "--listen", "127.0.0.1:0"], home.Path);

        int exit = daemon.WaitForExit(TimeSpan.FromSeconds(60));

        Assert.Equal(1, exit);
        Assert.Contains($"halo-server: cannot start: {model}", daemon.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", daemon.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Start_CorruptModelWithNotifySocket_ExitsOneWithOneErrorLineAndNoReady()
    {
        using var home = new TempDir();
        using var notify = new NotifySocket(home.Path);
        string model = home.File("broken.gguf");
        File.WriteAllBytes(model, File.ReadAllBytes(TinyModel.Path).AsSpan(0, 4096).ToArray());
        using var daemon = DaemonProcess.Start(["--model", model, "--listen", "127.0.0.1:0"], home.Path,
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path });

        int exit = daemon.WaitForExit(TimeSpan.FromSeconds(60));

        // The model loads while the web host starts; its failure still stops the start before READY=1.
        Assert.Equal(1, exit);
        IReadOnlyList<string> lines = notify.Lines;
        output.WriteLine(string.Join("\n", lines));
        Assert.True(IndexOf(lines, "STATUS=loading model") >= 0, "the load had started");
        Assert.Equal(-1, IndexOf(lines, "READY=1"));
        string error = Assert.Single(daemon.Output.Split('\n'), l => l.Contains("cannot start", StringComparison.Ordinal));
        Assert.StartsWith($"halo-server: cannot start: {model}: ", error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", daemon.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Start_PortInUse_ExitsOneWithOneLineAndNoStackTrace()
    {
        using var home = new TempDir();
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        using var daemon = DaemonProcess.Start(["--model", TinyModel.Path, "--listen", $"127.0.0.1:{port}"], home.Path);

        int exit = daemon.WaitForExit(TimeSpan.FromSeconds(60));

        Assert.Equal(1, exit);
        string text = daemon.Output;
        Assert.Contains($"halo-server: cannot start: Failed to bind to address http://127.0.0.1:{port}: address already in use", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Demo_FirstRun_SynthesizesIntoCacheThenReusesIt()
    {
        using var home = new TempDir();
        for (int run = 0; run < 2; run++)
        {
            using var daemon = DaemonProcess.Start(["--demo", "--listen", "127.0.0.1:0"], home.Path);
            using var client = new HttpClient { BaseAddress = daemon.WaitForUrl(StartTimeout) };
            string models = await client.GetStringAsync("v1/models");
            Assert.Contains("\"id\":\"demo\"", models, StringComparison.Ordinal);
            Assert.Contains("\"random_weights\":true", models, StringComparison.Ordinal);
            Assert.Contains(run == 0 ? "synthesizing the demo model" : "RANDOM WEIGHTS", daemon.Output, StringComparison.Ordinal);
            Assert.Contains("curl -s http://127.0.0.1:", daemon.Output, StringComparison.Ordinal);
            daemon.Signal(DaemonProcess.SigTerm);
            Assert.Equal(0, daemon.WaitForExit(TimeSpan.FromSeconds(30)));
        }

        Assert.True(File.Exists(Path.Combine(home.Path, "halo", "demo-tiny-tq2_0.gguf")));
    }

    private static async Task<string> ReadStream(HttpClient client, int maxTokens)
    {
        string body = $$$"""{"messages": [{"role": "user", "content": "tell a long story"}], "max_tokens": {{{maxTokens}}}, "temperature": 0, "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}}""";
        using HttpResponseMessage response = await client.PostAsync("v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        return await response.Content.ReadAsStringAsync();
    }

    private static async Task WaitUntil(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in 30 s");
            await Task.Delay(20);
        }
    }

    private static int IndexOf(IReadOnlyList<string> lines, string prefix)
    {
        for (int i = 0; i < lines.Count; i++)
        {
            if (lines[i].StartsWith(prefix, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
