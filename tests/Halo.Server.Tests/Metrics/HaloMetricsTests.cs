using System.Text;
using System.Text.RegularExpressions;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;

namespace Halo.Server.Tests.Metrics;

public sealed partial class HaloMetricsTests
{
    [Fact]
    public async Task Scrape_AfterTraffic_ExportsEveryDesignMetricWithValues()
    {
        using var sysfs = new TempDir();
        GpuSysfsTests.WriteFakeAmdGpu(sysfs.Path);
        await using InProcessServer server = await InProcessServer.StartAsync(InProcessServer.DefaultOptions(o => o with
        {
            Metrics = o.Metrics with { SysfsRoot = sysfs.Path },
        }));
        using HttpResponseMessage chat = await server.Client.PostAsync("v1/chat/completions", new StringContent(
            """{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 0}""", Encoding.UTF8, "application/json"));
        using HttpResponseMessage bad = await server.Client.PostAsync("v1/chat/completions", new StringContent("{"));

        string text = await server.Client.GetStringAsync("metrics");

        Assert.Equal(1, Value(text, """halo_requests_total{endpoint="/v1/chat/completions",code="200"}"""));
        Assert.Equal(1, Value(text, """halo_requests_total{endpoint="/v1/chat/completions",code="400"}"""));
        Assert.True(Value(text, """halo_request_duration_seconds_count{endpoint="/v1/chat/completions"}""") >= 2);
        Assert.Equal(1, Value(text, "halo_time_to_first_token_seconds_count"));
        Assert.Equal(4, Value(text, "halo_inter_token_latency_seconds_count"));
        Assert.Equal(1, Value(text, "halo_queue_time_seconds_count"));
        Assert.True(Value(text, "halo_prompt_tokens_total") > 5, "warm-up and the chat prompt");
        Assert.Equal(5 + 1, Value(text, "halo_generation_tokens_total"));   // the request's 5 and warm-up's 1
        Assert.Equal(0, Value(text, "halo_requests_running"));
        Assert.Equal(0, Value(text, "halo_requests_waiting"));
        Assert.Equal(0, Value(text, "halo_kv_cache_usage_ratio"));
        Assert.Equal(1, Value(text, """halo_model_info{model="tiny",backend="cpu",device=""", prefixOnly: true));
        Assert.True(Value(text, "halo_model_load_seconds") > 0);
        Assert.True(Value(text, "halo_gc_pause_seconds_total") >= 0);
        Assert.Equal(0.37, Value(text, "halo_gpu_busy_ratio"), 6);
        Assert.Equal(536870912, Value(text, """halo_gpu_memory_used_bytes{pool="vram"}"""));
        Assert.Equal(1073741824, Value(text, """halo_gpu_memory_used_bytes{pool="gtt"}"""));
        Assert.Equal(51, Value(text, "halo_gpu_temperature_celsius"));
        Assert.Equal(42.5, Value(text, "halo_gpu_power_watts"));
        Assert.Contains("process_working_set_bytes", text, StringComparison.Ordinal);
        Assert.Contains("dotnet_collection_count_total", text, StringComparison.Ordinal);
    }

    private static double Value(string text, string series, bool prefixOnly = false)
    {
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith(series, StringComparison.Ordinal) && (prefixOnly || line.Length > series.Length && line[series.Length] == ' '))
            {
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        throw new Xunit.Sdk.XunitException($"series {series} not found in:\n{string.Join('\n', text.Split('\n').Where(l => l.StartsWith("halo_", StringComparison.Ordinal)))}");
    }
}
