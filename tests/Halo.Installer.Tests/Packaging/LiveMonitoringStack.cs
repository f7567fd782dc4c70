using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Halo.Testing;

namespace Halo.Installer.Tests.Packaging;

/// <summary>
/// A whole monitored appliance on loopback, from real parts: the daemon (`halo serve`, tiny synthetic model,
/// amdgpu gauges read from a fake sysfs tree through metrics.sysfs_root), `halo doctor --textfile` output served
/// by a real node_exporter, and a real Prometheus running the shipped prometheus.yml (targets moved to the test
/// ports, 1 s intervals) with the shipped alert rules. Traffic is sent before the tests query it.
/// </summary>
public sealed class LiveMonitoringStack : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly List<Process> _processes = [];
    private HaloDaemon? _daemon;

    internal string PrometheusUrl { get; private set; } = "";

    internal string Log { get; private set; } = "";

    public async Task InitializeAsync()
    {
        string sysfs = FakeAmdgpuSysfs();
        _daemon = await HaloDaemon.StartAsync(_dir.Path, "daemon",
            new Dictionary<string, string> { ["HALO_METRICS_SYSFS_ROOT"] = sysfs });
        string textfiles = DoctorTextfile();
        int nodePort = StartNodeExporter(textfiles);
        int prometheusPort = StartPrometheus(_daemon.Port, nodePort);
        PrometheusUrl = $"http://127.0.0.1:{prometheusPort}";
        await WaitAsync("Prometheus ready", async () => (await HaloDaemon.Client.GetAsync(PrometheusUrl + "/-/ready")).IsSuccessStatusCode);
        await WaitAsync("all targets up", AllTargetsUpAsync);
        await SendTrafficAsync(_daemon);
        // Three more scrapes so the last requests are in the samples the queries read.
        await Task.Delay(TimeSpan.FromSeconds(3));
    }

    /// <summary>Runs an instant query; the parsed `data.result` array, or the error Prometheus gave.</summary>
    internal async Task<(bool Ok, JsonElement Result, string Error)> QueryAsync(string expr)
    {
        using HttpResponseMessage response = await HaloDaemon.Client.GetAsync(
            PrometheusUrl + "/api/v1/query?query=" + Uri.EscapeDataString(expr));
        using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        JsonElement root = body.RootElement.Clone();
        return root.GetProperty("status").GetString() == "success"
            ? (true, root.GetProperty("data").GetProperty("result"), "")
            : (false, default, root.GetProperty("errorType").GetString() + ": " + root.GetProperty("error").GetString());
    }

    internal async Task<JsonElement> GetAsync(string path)
    {
        using JsonDocument body = JsonDocument.Parse(await HaloDaemon.Client.GetStringAsync(PrometheusUrl + path));
        return body.RootElement.GetProperty("data").Clone();
    }

    public Task DisposeAsync()
    {
        foreach (Process process in _processes)
        {
            ProcessRunner.Stop(process, TimeSpan.FromSeconds(10));
            process.Dispose();
        }

        _daemon?.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>A Strix-Halo-like amdgpu device (vendor 0x1002) with busy, memory, temperature and power files.</summary>
    private string FakeAmdgpuSysfs()
    {
        string root = _dir.File("sys");
        string device = Path.Combine(root, "class", "drm", "card0", "device");
        string hwmon = Path.Combine(device, "hwmon", "hwmon3");
        Directory.CreateDirectory(hwmon);
        Directory.CreateDirectory(Path.Combine(root, "class", "drm", "card0-DP-1"));
        File.WriteAllText(Path.Combine(device, "vendor"), "0x1002\n");
        File.WriteAllText(Path.Combine(device, "device"), "0x1586\n");
        File.WriteAllText(Path.Combine(device, "gpu_busy_percent"), "37\n");
        File.WriteAllText(Path.Combine(device, "mem_info_vram_used"), "536870912\n");
        File.WriteAllText(Path.Combine(device, "mem_info_gtt_used"), "1073741824\n");
        File.WriteAllText(Path.Combine(device, "mem_info_vis_vram_used"), "268435456\n");
        File.WriteAllText(Path.Combine(hwmon, "name"), "amdgpu\n");
        File.WriteAllText(Path.Combine(hwmon, "temp1_input"), "54000\n");
        File.WriteAllText(Path.Combine(hwmon, "power1_average"), "23000000\n");
        return root;
    }

    /// <summary>`halo doctor --textfile` on a fake machine root, as halo-doctor.service runs it.</summary>
    private string DoctorTextfile()
    {
        string root = _dir.File("machine");
        Directory.CreateDirectory(Path.Combine(root, "etc", "systemd", "system"));
        File.WriteAllText(Path.Combine(root, "etc", "os-release"), "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n");
        string textfiles = _dir.File("textfiles");
        Directory.CreateDirectory(textfiles);
        ProcessResult doctor = ProcessRunner.Run(PublishedApps.Halo, ["doctor", "--root", root, "--textfile", textfiles], TimeSpan.FromMinutes(2));
        string prom = Path.Combine(textfiles, "halo_doctor.prom");
        if (doctor.ExitCode is not (0 or 1 or 2) || !File.Exists(prom))
        {
            throw new InvalidOperationException($"halo doctor --textfile wrote no halo_doctor.prom (exit {doctor.ExitCode}):\n{doctor.Output}");
        }

        Log += $"halo doctor exit {doctor.ExitCode}; {File.ReadAllLines(prom).Length} lines in halo_doctor.prom\n";
        return textfiles;
    }

    private int StartNodeExporter(string textfiles)
    {
        int port = LoopbackPort.Free();
        _processes.Add(ProcessRunner.StartLogged(
            ProcessRunner.Require("prometheus-node-exporter", "prometheus-node-exporter"),
            [$"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults", "--collector.textfile",
             $"--collector.textfile.directory={textfiles}", "--collector.filesystem"],
            _dir.File("node-exporter.log")));
        return port;
    }

    private int StartPrometheus(int daemonPort, int nodePort)
    {
        string shipped = Path.Combine(TestPaths.RepoRoot, "config", "prometheus");
        string config = _dir.File("prometheus.yml");
        File.WriteAllText(config, File.ReadAllText(Path.Combine(shipped, "prometheus.yml"))
            .Replace("scrape_interval: 15s", "scrape_interval: 1s", StringComparison.Ordinal)
            .Replace("evaluation_interval: 15s", "evaluation_interval: 1s", StringComparison.Ordinal)
            .Replace("scrape_timeout: 10s", "scrape_timeout: 1s", StringComparison.Ordinal)
            .Replace("127.0.0.1:8180", $"127.0.0.1:{daemonPort}", StringComparison.Ordinal)
            .Replace("127.0.0.1:9100", $"127.0.0.1:{nodePort}", StringComparison.Ordinal));
        File.Copy(Path.Combine(shipped, "halo-alerts.yml"), _dir.File("halo-alerts.yml"));
        int port = LoopbackPort.Free();
        _processes.Add(ProcessRunner.StartLogged(
            ProcessRunner.Require("prometheus", "prometheus"),
            [$"--config.file={config}", $"--storage.tsdb.path={_dir.File("tsdb")}", $"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            _dir.File("prometheus.log")));
        return port;
    }

    private async Task<bool> AllTargetsUpAsync()
    {
        JsonElement targets = (await GetAsync("/api/v1/targets")).GetProperty("activeTargets");
        int up = 0;
        foreach (JsonElement target in targets.EnumerateArray())
        {
            up += target.GetProperty("health").GetString() == "up" ? 1 : 0;
        }

        return targets.GetArrayLength() == 2 && up == 2;
    }

    /// <summary>Chat (plain and streamed) and text completions from three clients at once, plus one bad request.</summary>
    private async Task SendTrafficAsync(HaloDaemon daemon)
    {
        string model = await daemon.ModelIdAsync();
        var clock = Stopwatch.StartNew();
        int requests = 0;
        async Task Client(int id)
        {
            for (int i = 0; clock.Elapsed < TimeSpan.FromSeconds(6); i++)
            {
                using HttpResponseMessage response = await HaloDaemon.CompleteAsync(daemon.BaseUrl, model, $"client {id} request {i}", stream: i % 2 == 1);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    throw new InvalidOperationException($"completion failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }

                Interlocked.Increment(ref requests);
            }
        }

        using (var completion = new StringContent(JsonSerializer.Serialize(new { model, prompt = "Once upon a time", max_tokens = 4 }), System.Text.Encoding.UTF8, "application/json"))
        using (HttpResponseMessage response = await HaloDaemon.Client.PostAsync(daemon.BaseUrl + "/v1/completions", completion))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using (var bad = new StringContent("{\"messages\": 42}", System.Text.Encoding.UTF8, "application/json"))
        using (HttpResponseMessage response = await HaloDaemon.Client.PostAsync(daemon.BaseUrl + "/v1/chat/completions", bad))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        await Task.WhenAll(Client(1), Client(2), Client(3));
        Log += string.Create(CultureInfo.InvariantCulture, $"{requests} completions in {clock.Elapsed.TotalSeconds:0.0} s\n");
    }

    private static async Task WaitAsync(string what, Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"timed out waiting for {what}");
    }
}
