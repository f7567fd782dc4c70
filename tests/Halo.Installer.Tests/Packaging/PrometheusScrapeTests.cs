using System.Globalization;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Halo.Installer.Tests.Packaging;

/// <summary>
/// Every PromQL expression of the Grafana dashboard and of the alert rules, run by a real Prometheus that
/// scrapes the real daemon while it serves requests (LiveMonitoringStack). A syntax error fails, and so does a
/// dashboard panel without data: a metric renamed on either side shows up here.
/// </summary>
public sealed class PrometheusScrapeTests(LiveMonitoringStack stack, ITestOutputHelper output) : IClassFixture<LiveMonitoringStack>
{
    /// <summary>What Grafana sends for $__rate_interval here: the traffic fits in it, with 1 s scrapes.</summary>
    private const string RateInterval = "1m";

    [Fact]
    public async Task DashboardQueries_LivePrometheus_EveryPanelHasData()
    {
        output.WriteLine(stack.Log);
        using JsonDocument dashboard = GrafanaDashboard.Load();
        var report = new StringBuilder();
        var problems = new List<string>();

        foreach (IGrouping<string, PanelQuery> panel in GrafanaDashboard.Queries(dashboard).GroupBy(q => q.Panel))
        {
            bool anyValue = false;
            foreach (PanelQuery query in panel)
            {
                string expr = GrafanaDashboard.Interpolate(query.Expr, RateInterval);
                (bool ok, JsonElement result, string error) = await stack.QueryAsync(expr);
                if (!ok)
                {
                    problems.Add($"{panel.Key} [{query.RefId}]: {error}\n    {expr}");
                    continue;
                }

                int series = result.GetArrayLength();
                string first = series > 0 ? result[0].GetProperty("value")[1].GetString()! : "-";
                anyValue |= Enumerable.Range(0, series).Any(i => IsNumber(result[i].GetProperty("value")[1].GetString()!));
                report.AppendLine(CultureInfo.InvariantCulture, $"{panel.Key,-36} {query.RefId}  series={series,-3} first={first}");
                if (series == 0)
                {
                    problems.Add($"{panel.Key} [{query.RefId}]: no data\n    {expr}");
                }
            }

            if (!anyValue)
            {
                problems.Add($"{panel.Key}: no query returned a number (only NaN or nothing)");
            }
        }

        output.WriteLine(report.ToString());
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public async Task AlertRules_LivePrometheus_ParseAndEvaluateWithoutError()
    {
        var problems = new List<string>();
        foreach (AlertRule rule in AlertRules.Load())
        {
            (bool ok, JsonElement result, string error) = await stack.QueryAsync(rule.Expr);
            if (!ok)
            {
                problems.Add($"{rule.Name}: {error}");
            }
            else
            {
                output.WriteLine($"{rule.Name,-28} {result.GetArrayLength()} series now");
            }
        }

        JsonElement groups = (await stack.GetAsync("/api/v1/rules")).GetProperty("groups");
        int loaded = 0;
        foreach (JsonElement rule in groups.EnumerateArray().SelectMany(g => g.GetProperty("rules").EnumerateArray()))
        {
            loaded++;
            string health = rule.GetProperty("health").GetString()!;
            if (health != "ok")
            {
                problems.Add($"{rule.GetProperty("name").GetString()}: rule health {health} {rule.GetProperty("lastError").GetString()}");
            }
        }

        Assert.Equal(AlertRules.Load().Count, loaded);
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public async Task DaemonDownAlert_LivePrometheus_QuietWhileDaemonServes()
    {
        (bool ok, JsonElement result, string error) = await stack.QueryAsync("ALERTS{alertname=~\"HaloDaemonDown|HaloDaemonNotScraped\"}");

        Assert.True(ok, error);
        Assert.Equal(0, result.GetArrayLength());
    }

    private static bool IsNumber(string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v);
}
