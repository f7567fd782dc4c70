using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using Halo.Testing;
using Xunit.Abstractions;

namespace Halo.Installer.Tests.Packaging;

/// <summary>
/// The scale-out example of DESIGN.md section 9, run for real: config/haproxy/haproxy.cfg in a real HAProxy in
/// front of two real daemons on loopback; one daemon is stopped (SIGTERM, as systemd does) while clients keep
/// sending requests, and not one request may fail. Also: the LAN drop-ins keep the unit verified and hardened.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class ScaleOutTests(ITestOutputHelper output)
{
    private static string ConfigPath => Path.Combine(TestPaths.RepoRoot, "config", "haproxy", "haproxy.cfg");

    [Fact]
    public void HaproxyCheck_ShippedConfig_Valid()
    {
        ProcessResult result = ProcessRunner.Run(Haproxy(), ["-c", "-f", ConfigPath]);

        Assert.True(result.ExitCode == 0, result.Output);
    }

    [Fact]
    public void NginxCheck_ShippedConfig_Valid()
    {
        using var dir = new TempDir();
        string main = dir.File("nginx.conf");
        File.WriteAllText(main,
            $"pid {dir.File("nginx.pid")};\nerror_log stderr;\nevents {{}}\n" +
            $"http {{ include {Path.Combine(TestPaths.RepoRoot, "config", "nginx", "halo.conf")}; }}\n");

        ProcessResult result = ProcessRunner.Run(ProcessRunner.Require("nginx", "nginx-light"), ["-t", "-c", main, "-p", dir.Path]);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("test is successful", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void ShippedConfig_Backends_HealthCheckedOnHealth()
    {
        string config = File.ReadAllText(ConfigPath);

        Assert.Contains("http-check send meth GET uri /health", config, StringComparison.Ordinal);
        Assert.Contains("http-check expect status 200", config, StringComparison.Ordinal);
        Assert.True(ServerLine().Matches(config).Count >= 2, "the example balances several boxes");
        Assert.All(ServerLine().Matches(config), m => Assert.EndsWith(" check", m.Value.TrimEnd(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task TwoDaemonsBehindHaproxy_OneStops_NoRequestFails()
    {
        using var dir = new TempDir();
        using HaloDaemon first = await HaloDaemon.StartAsync(dir.Path, "box1");
        using HaloDaemon second = await HaloDaemon.StartAsync(dir.Path, "box2");
        string model = await first.ModelIdAsync();
        int proxyPort = LoopbackPort.Free();
        string config = dir.File("haproxy.cfg");
        File.WriteAllText(config, LoopbackConfig(proxyPort, first.Port, second.Port));
        Process haproxy = ProcessRunner.StartLogged(Haproxy(), ["-db", "-f", config], dir.File("haproxy.log"));
        try
        {
            string proxy = $"http://127.0.0.1:{proxyPort}";
            await WaitForAsync(async () => (await HaloDaemon.Client.GetAsync(proxy + "/health")).StatusCode == HttpStatusCode.OK);

            // Both boxes take traffic.
            for (int i = 0; i < 8; i++)
            {
                using HttpResponseMessage response = await HaloDaemon.CompleteAsync(proxy, model, $"warm up {i}");
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            double servedByFirst = await CompletionsServedAsync(first), servedBySecond = await CompletionsServedAsync(second);
            output.WriteLine($"before the stop: box1 served {servedByFirst}, box2 served {servedBySecond}");
            Assert.True(servedByFirst > 0 && servedBySecond > 0, $"leastconn should use both boxes: {servedByFirst} / {servedBySecond}");

            // Stop box1 while requests keep coming, through its drain and HAProxy's down detection (2 x 2 s).
            Task stopping = Task.Run(first.Stop);
            var failures = new List<string>();
            int sent = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(8) || !stopping.IsCompleted)
            {
                using HttpResponseMessage response = await HaloDaemon.CompleteAsync(proxy, model, $"during the stop {sent}");
                sent++;
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    failures.Add($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                }

                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(90), "box1 did not stop within 90 s");
            }

            await stopping;
            output.WriteLine($"while box1 stopped: {sent} requests, {failures.Count} failed; box1 exit code {first.ExitCode}");
            Assert.True(failures.Count == 0, $"{failures.Count} of {sent} requests failed:\n{string.Join('\n', failures)}\n{File.ReadAllText(dir.File("haproxy.log"))}");
            Assert.Equal(0, first.ExitCode);
            Assert.True(sent >= 5, $"only {sent} requests were sent while box1 stopped");
            Assert.True(await CompletionsServedAsync(second) > servedBySecond, "box2 took over the traffic");
        }
        finally
        {
            ProcessRunner.Stop(haproxy, TimeSpan.FromSeconds(5));
            output.WriteLine(File.ReadAllText(dir.File("haproxy.log")));
        }
    }

    [Fact]
    public void LanDropIns_WithServerUnits_VerifyAndExposureStaysAtMostTwo()
    {
        using var dir = new TempDir();
        string[] units = SystemdUnitTests.StageUnits(dir);
        foreach (string dropIn in new[] { "halo-server.service.d", "halo-server.socket.d" })
        {
            string target = Path.Combine(dir.Path, dropIn);
            Directory.CreateDirectory(target);
            File.Copy(Path.Combine(TestPaths.RepoRoot, "config", "haproxy", dropIn, "lan.conf"), Path.Combine(target, "lan.conf"));
        }

        string server = units.Single(u => u.EndsWith("halo-server.service", StringComparison.Ordinal));
        string socket = units.Single(u => u.EndsWith("halo-server.socket", StringComparison.Ordinal));
        string analyze = ProcessRunner.Require("systemd-analyze", "systemd");
        ProcessResult verify = ProcessRunner.Run(analyze, ["verify", "--man=no", server, socket]);
        ProcessResult security = ProcessRunner.Run(analyze, ["security", "--offline=yes", "--no-pager", server]);

        Assert.True(verify.ExitCode == 0 && verify.Output.Trim().Length == 0, verify.Output);
        Assert.Contains("non-localhost entries", security.Output, StringComparison.Ordinal);
        double exposure = SystemdUnitTests.ParseExposure(security.Output);
        output.WriteLine($"halo-server.service with the LAN drop-in: exposure {exposure:0.0}");
        Assert.InRange(exposure, 0.0, 2.0);
    }

    /// <summary>The shipped config with its listen address and servers moved to loopback test ports.</summary>
    private static string LoopbackConfig(int proxyPort, int firstPort, int secondPort)
    {
        string config = File.ReadAllText(ConfigPath)
            .Replace("bind *:8180", $"bind 127.0.0.1:{proxyPort}", StringComparison.Ordinal)
            .Replace("bind 127.0.0.1:8404", $"bind 127.0.0.1:{LoopbackPort.Free()}", StringComparison.Ordinal);
        config = ServerLine().Replace(config, "");
        return config.Replace(
            "default-server inter 2s fall 2 rise 2 on-marked-down shutdown-sessions\n",
            "default-server inter 2s fall 2 rise 2 on-marked-down shutdown-sessions\n" +
            $"    server box1 127.0.0.1:{firstPort} check\n    server box2 127.0.0.1:{secondPort} check\n",
            StringComparison.Ordinal);
    }

    private static async Task<double> CompletionsServedAsync(HaloDaemon daemon)
    {
        string metrics = await HaloDaemon.Client.GetStringAsync(daemon.BaseUrl + "/metrics");
        double total = 0;
        foreach (Match m in ChatCompletionsCounter().Matches(metrics))
        {
            total += double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        }

        return total;
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
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

            await Task.Delay(200);
        }

        throw new TimeoutException("HAProxy did not answer /health with 200 within 30 s");
    }

    private static string Haproxy() => ProcessRunner.Require("haproxy", "haproxy");

    [GeneratedRegex(@"^    server \S+ \S+ check\n", RegexOptions.Multiline)]
    private static partial Regex ServerLine();

    [GeneratedRegex(@"^halo_requests_total\{[^}]*endpoint=""/v1/chat/completions""[^}]*\} (\S+)$", RegexOptions.Multiline)]
    private static partial Regex ChatCompletionsCounter();
}
