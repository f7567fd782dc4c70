using System.Text.Json.Nodes;
using Halo.Server.Mcp;

namespace Halo.Server.Tests.Mcp;

public sealed class MetricsSummaryTests
{
    private const string Exposition = """
        # HELP halo_requests_total HTTP requests by endpoint and status code.
        # TYPE halo_requests_total counter
        halo_requests_total{endpoint="/v1/chat/completions",code="200"} 7
        halo_requests_total{endpoint="/v1/chat/completions",code="400"} 2
        halo_requests_total{endpoint="/mcp",code="401"} 1
        halo_requests_total{endpoint="/health",xcode="500",code="200"} 5
        halo_prompt_tokens_total 120
        halo_generation_tokens_total 340
        halo_requests_running 2
        halo_requests_waiting 1
        halo_kv_cache_usage_ratio 0.25
        # TYPE halo_time_to_first_token_seconds histogram
        halo_time_to_first_token_seconds_sum 1.5
        halo_time_to_first_token_seconds_count 10
        halo_time_to_first_token_seconds_bucket{le="0.1"} 4
        halo_time_to_first_token_seconds_bucket{le="0.2"} 8
        halo_time_to_first_token_seconds_bucket{le="0.4"} 10
        halo_time_to_first_token_seconds_bucket{le="+Inf"} 10
        halo_inter_token_latency_seconds_sum 0
        halo_inter_token_latency_seconds_count 0
        halo_inter_token_latency_seconds_bucket{le="0.01"} 0
        halo_inter_token_latency_seconds_bucket{le="+Inf"} 0
        """;

    [Fact]
    public void FromPrometheusText_Counters_SumsRequestsAndCountsFailuresByCode()
    {
        JsonObject summary = MetricsSummary.FromPrometheusText(Exposition);

        Assert.Equal(15, summary["requests_total"]!.GetValue<double>());
        Assert.Equal(3, summary["requests_failed"]!.GetValue<double>());
        Assert.Equal(120, summary["prompt_tokens_total"]!.GetValue<double>());
        Assert.Equal(340, summary["generation_tokens_total"]!.GetValue<double>());
        Assert.Equal(2, summary["requests_running"]!.GetValue<double>());
        Assert.Equal(1, summary["requests_waiting"]!.GetValue<double>());
        Assert.Equal(0.25, summary["kv_cache_usage_ratio"]!.GetValue<double>());
        Assert.Null(summary["model_load_seconds"]);
    }

    [Fact]
    public void FromPrometheusText_Histogram_MeanAndBucketInterpolatedQuantiles()
    {
        JsonObject ttft = MetricsSummary.FromPrometheusText(Exposition)["time_to_first_token_seconds"]!.AsObject();

        Assert.Equal(10, ttft["count"]!.GetValue<double>());
        Assert.Equal(0.15, ttft["mean"]!.GetValue<double>(), 9);
        Assert.Equal(0.125, ttft["p50"]!.GetValue<double>(), 9);   // rank 5: one of 4 into (0.1, 0.2]
        Assert.Equal(0.35, ttft["p95"]!.GetValue<double>(), 9);    // rank 9.5: 1.5 of 2 into (0.2, 0.4]
    }

    [Fact]
    public void FromPrometheusText_EmptyHistogram_HasNullStatistics()
    {
        JsonObject itl = MetricsSummary.FromPrometheusText(Exposition)["inter_token_latency_seconds"]!.AsObject();

        Assert.Equal(0, itl["count"]!.GetValue<double>());
        Assert.Null(itl["mean"]);
        Assert.Null(itl["p95"]);
    }
}
