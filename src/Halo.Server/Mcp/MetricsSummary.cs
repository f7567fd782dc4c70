using System.Globalization;
using System.Text.Json.Nodes;

namespace Halo.Server.Mcp;

/// <summary>
/// The <c>metrics</c> tool's short summary, read from the Prometheus exposition text both sides have (the daemon
/// renders its own registry; <c>halo mcp</c> fetches <c>/metrics</c>), so the two transports agree by construction.
/// </summary>
public static class MetricsSummary
{
    public static JsonObject FromPrometheusText(string text)
    {
        var samples = Parse(text);
        double requests = 0, failed = 0;
        foreach (Sample s in samples)
        {
            if (s.Name == "halo_requests_total")
            {
                requests += s.Value;
                if (int.TryParse(s.Label("code"), NumberStyles.None, CultureInfo.InvariantCulture, out int code) && code >= 400)
                {
                    failed += s.Value;
                }
            }
        }

        return new JsonObject
        {
            ["requests_total"] = requests,
            ["requests_failed"] = failed,
            ["prompt_tokens_total"] = Single(samples, "halo_prompt_tokens_total"),
            ["generation_tokens_total"] = Single(samples, "halo_generation_tokens_total"),
            ["requests_running"] = Single(samples, "halo_requests_running"),
            ["requests_waiting"] = Single(samples, "halo_requests_waiting"),
            ["kv_cache_usage_ratio"] = Single(samples, "halo_kv_cache_usage_ratio"),
            ["model_load_seconds"] = Single(samples, "halo_model_load_seconds"),
            ["time_to_first_token_seconds"] = Histogram(samples, "halo_time_to_first_token_seconds"),
            ["inter_token_latency_seconds"] = Histogram(samples, "halo_inter_token_latency_seconds"),
            ["queue_time_seconds"] = Histogram(samples, "halo_queue_time_seconds"),
        };
    }

    /// <summary>count, mean, and p50/p95 estimated from the buckets (linear within a bucket, as PromQL's
    /// histogram_quantile does); null values when nothing was observed yet.</summary>
    private static JsonObject Histogram(List<Sample> samples, string name)
    {
        double count = Single(samples, name + "_count") ?? 0;
        double sum = Single(samples, name + "_sum") ?? 0;
        var buckets = new List<(double UpperBound, double Cumulative)>();
        foreach (Sample s in samples)
        {
            if (s.Name == name + "_bucket" && s.Label("le") is { } le)
            {
                double bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, CultureInfo.InvariantCulture);
                buckets.Add((bound, s.Value));
            }
        }

        buckets.Sort((a, b) => a.UpperBound.CompareTo(b.UpperBound));
        return new JsonObject
        {
            ["count"] = count,
            ["mean"] = count > 0 ? Round(sum / count) : null,
            ["p50"] = count > 0 ? Quantile(buckets, count, 0.5) : null,
            ["p95"] = count > 0 ? Quantile(buckets, count, 0.95) : null,
        };
    }

    private static double? Quantile(List<(double UpperBound, double Cumulative)> buckets, double count, double q)
    {
        double rank = q * count;
        double lower = 0, below = 0;
        foreach ((double upper, double cumulative) in buckets)
        {
            if (cumulative >= rank)
            {
                if (double.IsPositiveInfinity(upper))
                {
                    return Round(lower);   // beyond the last finite bucket: its bound is all we know
                }

                double inBucket = cumulative - below;
                return Round(inBucket > 0 ? lower + (upper - lower) * (rank - below) / inBucket : upper);
            }

            lower = upper;
            below = cumulative;
        }

        return null;
    }

    private static double Round(double seconds) => Math.Round(seconds, 6);

    private static double? Single(List<Sample> samples, string name)
    {
        foreach (Sample s in samples)
        {
            if (s.Name == name)
            {
                return s.Value;
            }
        }

        return null;
    }

    private static List<Sample> Parse(string text)
    {
        var samples = new List<Sample>();
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            int brace = line.IndexOf('{', StringComparison.Ordinal);
            int space = line.LastIndexOf(' ');
            if (space <= 0)
            {
                continue;
            }

            int close = brace >= 0 ? line.LastIndexOf('}') : -1;
            string name = brace >= 0 && brace < space ? line[..brace] : line[..line.IndexOf(' ', StringComparison.Ordinal)];
            string labels = brace >= 0 && close > brace ? line[(brace + 1)..close] : "";
            if (double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
            {
                samples.Add(new Sample(name, labels, value));
            }
        }

        return samples;
    }

    private readonly record struct Sample(string Name, string Labels, double Value)
    {
        /// <summary>The value of label <paramref name="key"/> (names are whole words: <c>code</c> is not <c>xcode</c>).</summary>
        public string? Label(string key)
        {
            string marker = key + "=\"";
            for (int at = Labels.IndexOf(marker, StringComparison.Ordinal); at >= 0; at = Labels.IndexOf(marker, at + 1, StringComparison.Ordinal))
            {
                if (at == 0 || Labels[at - 1] == ',')
                {
                    int from = at + marker.Length;
                    int end = Labels.IndexOf('"', from);
                    return end < 0 ? null : Labels[from..end];
                }
            }

            return null;
        }
    }
}
