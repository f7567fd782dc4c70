using System.Text.RegularExpressions;
using Halo.Testing;

namespace Halo.Installer.Tests.Packaging;

/// <summary>
/// The metric names DESIGN.md section 5 fixes (prefix halo_), read from the design document itself so the
/// dashboard and alert rules are checked against the contract and not against a copy of it.
/// </summary>
internal static partial class MetricContract
{
    /// <summary>The DESIGN.md histograms: queries must use their _bucket/_sum/_count series.</summary>
    public static readonly IReadOnlySet<string> Histograms = new HashSet<string>(StringComparer.Ordinal)
    {
        "halo_request_duration_seconds",
        "halo_time_to_first_token_seconds",
        "halo_inter_token_latency_seconds",
        "halo_queue_time_seconds",
    };

    private static readonly string[] HistogramSeries = ["_bucket", "_sum", "_count"];

    /// <summary>Every halo_ metric of DESIGN.md: section 5's list plus section 6's doctor textfile metric.</summary>
    public static IReadOnlySet<string> DesignedMetrics { get; } = ReadDesign();

    /// <summary>The halo_ metric names an expression reads, exactly as written.</summary>
    public static IEnumerable<string> HaloMetricsIn(string expr)
    {
        foreach (Match match in HaloIdentifier().Matches(expr))
        {
            yield return match.Value;
        }
    }

    /// <summary>Null when <paramref name="series"/> is a designed metric used the right way, else why not.</summary>
    public static string? Problem(string series)
    {
        foreach (string histogram in Histograms)
        {
            foreach (string suffix in HistogramSeries)
            {
                if (series == histogram + suffix)
                {
                    return null;
                }
            }
        }

        if (Histograms.Contains(series))
        {
            return $"{series} is a histogram: query {series}_bucket, _sum or _count";
        }

        return DesignedMetrics.Contains(series) ? null : $"{series} is not a metric of DESIGN.md section 5";
    }

    private static HashSet<string> ReadDesign()
    {
        string design = File.ReadAllText(Path.Combine(TestPaths.SharedDir, "DESIGN.md"));
        Match paragraph = MetricsParagraph().Match(design);
        if (!paragraph.Success)
        {
            throw new InvalidOperationException("DESIGN.md has no '- Metrics (prometheus-net, prefix `halo_`)' paragraph");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match name in BacktickedName().Matches(paragraph.Value))
        {
            if (name.Groups[1].Value != "halo_")
            {
                names.Add("halo_" + name.Groups[1].Value);
            }
        }

        if (design.Contains("halo_doctor_check_ok", StringComparison.Ordinal))
        {
            names.Add("halo_doctor_check_ok");
        }

        foreach (string histogram in Histograms)
        {
            if (!names.Contains(histogram))
            {
                throw new InvalidOperationException($"DESIGN.md no longer lists {histogram}");
            }
        }

        return names;
    }

    [GeneratedRegex(@"^- Metrics \(prometheus-net, prefix `halo_`\):.*?(?=^- |^## |\z)", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex MetricsParagraph();

    [GeneratedRegex(@"`([a-z_]+)(?:\{[a-z_,]*\})?`")]
    private static partial Regex BacktickedName();

    // A metric name, not a file name such as halo_doctor.prom inside a label matcher.
    [GeneratedRegex(@"\bhalo_[a-z0-9_]+(?![a-z0-9_]|\\*\.)")]
    private static partial Regex HaloIdentifier();
}
