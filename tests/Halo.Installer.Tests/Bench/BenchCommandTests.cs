using System.Text.Json;
using Halo.Installer.Tests.Packaging;
using Halo.Installer.Tests.Run;
using Halo.Testing;

namespace Halo.Installer.Tests.Bench;

public sealed class BenchCommandTests
{
    [Fact]
    public void Bench_TinyModelJson_ReportsMinMedianMaxOfEveryMetric()
    {
        using var dir = new TempDir();
        string model = HaloProcess.TinyModel(dir);
        (int code, string stdout, string stderr) = HaloProcess.Run("bench", "--model", model, "--pp", "16", "--tg", "4", "--reps", "2", "--threads", "2", "--json", "--breakdown");
        Assert.True(code == 0, stderr);
        JsonElement root = JsonDocument.Parse(stdout).RootElement;
        foreach (string metric in (string[])["pp_tps", "tg_tps", "tg_d0_tps", "load_ms", "peak_rss_mib"])
        {
            JsonElement m = root.GetProperty("summary").GetProperty(metric);
            double min = m.GetProperty("min").GetDouble(), median = m.GetProperty("median").GetDouble(), max = m.GetProperty("max").GetDouble();
            Assert.True(min > 0 && min <= median && median <= max, $"{metric}: {min} {median} {max}");
        }

        Assert.Equal(2, root.GetProperty("settings").GetProperty("reps").GetInt32());
        Assert.True(root.GetProperty("breakdown_ms_per_token").GetProperty("matmul_gate_up").GetDouble() > 0);
    }

    [Fact]
    public void Bench_ParallelFourStreams_ReportsThroughputSpeedupAndLatencyBesideTheContractMetrics()
    {
        using var dir = new TempDir();
        string model = HaloProcess.TinyModel(dir);
        // 200 tokens a stream: the tiny model must still be decoding when the timed window opens.
        (int code, string stdout, string stderr) = HaloProcess.Run("bench", "--model", model, "--pp", "16", "--tg", "200", "--reps", "1", "--threads", "2", "--json", "--parallel", "4", "--breakdown");
        Assert.True(code == 0, stderr);
        JsonElement root = JsonDocument.Parse(stdout).RootElement;
        JsonElement summary = root.GetProperty("summary");
        foreach (string metric in (string[])["pp_tps", "tg_tps", "tg_d0_tps", "load_ms", "peak_rss_mib", "parallel_tps", "parallel_stream_tps",
                     "parallel_single_tps", "parallel_speedup", "parallel_itl_p99_ms"])
        {
            Assert.True(summary.GetProperty(metric).GetProperty("median").GetDouble() > 0, metric);
        }

        double aggregate = summary.GetProperty("parallel_tps").GetProperty("median").GetDouble();
        double perStream = summary.GetProperty("parallel_stream_tps").GetProperty("median").GetDouble();
        // Both are printed rounded to 0.01, so they agree to within that (not to a rounded decimal place).
        Assert.InRange(perStream, aggregate / 4 - 0.011, aggregate / 4 + 0.011);
        // On the tiny model a reader often takes several tokens in one wake, so the median gap can round to 0.
        double p50 = summary.GetProperty("parallel_itl_p50_ms").GetProperty("median").GetDouble();
        Assert.InRange(p50, 0, summary.GetProperty("parallel_itl_p99_ms").GetProperty("median").GetDouble());
        double overhead = summary.GetProperty("parallel_loop_overhead_pct").GetProperty("median").GetDouble();
        Assert.InRange(overhead, 0, 100);
        Assert.Equal(4, root.GetProperty("settings").GetProperty("parallel").GetInt32());
        Assert.True(root.GetProperty("parallel_breakdown_ms_per_step").GetProperty("matmul_gate_up").GetDouble() > 0);
    }

    [Fact]
    public async Task Bench_ServerParallel_DrivesTheRealDaemonOverHttpAndCountsEveryToken()
    {
        using var logs = new TempDir();
        using HaloDaemon daemon = await HaloDaemon.StartAsync(logs.Path, "bench-server",
            new Dictionary<string, string> { ["HALO_SCHEDULER_SLOTS"] = "4", ["HALO_MODEL_THREADS"] = "2" });

        (int code, string stdout, string stderr) = HaloProcess.Run("bench", "--server", daemon.BaseUrl, "--parallel", "4", "--tg", "32", "--reps", "1", "--json");

        // Exit 0 means every stream delivered all 32 tokens (ignore_eos, one logprobs entry per token).
        Assert.True(code == 0, stderr + daemon.Tail());
        JsonElement root = JsonDocument.Parse(stdout).RootElement;
        foreach (string metric in (string[])["parallel_tps", "parallel_stream_tps", "parallel_single_tps", "parallel_speedup", "parallel_itl_p99_ms"])
        {
            Assert.True(root.GetProperty("summary").GetProperty(metric).GetProperty("median").GetDouble() >= 0, metric);
        }

        Assert.Equal(await daemon.ModelIdAsync(), root.GetProperty("settings").GetProperty("model").GetString());
        Assert.Equal(4, root.GetProperty("settings").GetProperty("parallel").GetInt32());
    }

    [Fact]
    public void Bench_ServerNotListening_ExitsOneWithOneLine()
    {
        string url = $"http://127.0.0.1:{LoopbackPort.Free()}";

        (int code, _, string stderr) = HaloProcess.Run("bench", "--server", url, "--parallel", "2", "--reps", "1");

        Assert.Equal(1, code);
        Assert.StartsWith($"halo bench: {url}/: ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_WithoutParallel_AddsNoParallelMetrics()
    {
        using var dir = new TempDir();
        string model = HaloProcess.TinyModel(dir);
        (int code, string stdout, string stderr) = HaloProcess.Run("bench", "--model", model, "--pp", "8", "--tg", "2", "--reps", "1", "--threads", "1", "--json");
        Assert.True(code == 0, stderr);
        JsonElement root = JsonDocument.Parse(stdout).RootElement;
        Assert.False(root.GetProperty("summary").TryGetProperty("parallel_tps", out _));
        Assert.False(root.GetProperty("settings").TryGetProperty("parallel", out _));
    }

    [Theory]
    [InlineData("--parallel", "-1", "--tg", "8")]
    [InlineData("--parallel", "8", "--tg", "1")]
    [InlineData("--server", "http://127.0.0.1:9", "--tg", "8")]
    public void Bench_BadParallelSettings_ExitsTwo(params string[] args)
    {
        using var dir = new TempDir();
        (int code, _, string stderr) = HaloProcess.Run(["bench", "--model", dir.File("x.gguf"), .. args]);
        Assert.Equal(2, code);
        Assert.Contains("--parallel", stderr);
    }

    [Fact]
    public void Bench_MissingModel_ExitsOneWithClearError()
    {
        using var dir = new TempDir();
        (int code, _, string stderr) = HaloProcess.Run("bench", "--model", dir.File("none.gguf"), "--reps", "1");
        Assert.Equal(1, code);
        Assert.Contains("none.gguf", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
    }

    [Fact]
    public void Bench_ZeroReps_ExitsTwo()
    {
        using var dir = new TempDir();
        (int code, _, _) = HaloProcess.Run("bench", "--model", dir.File("x.gguf"), "--reps", "0");
        Assert.Equal(2, code);
    }
}
