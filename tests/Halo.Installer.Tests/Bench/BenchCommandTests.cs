using System.Text.Json;
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
