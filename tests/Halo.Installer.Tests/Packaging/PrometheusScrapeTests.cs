using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Halo.Installer.Tests.Packaging;

/// <summary>
/// Every PromQL expression of the Grafana dashboard and of the alert rules, run by a real Prometheus that
/// scrapes the real daemon while it serves requests (LiveMonitoringStack). A syntax error fails, and so does a
/// dashboard panel without data: a metric renamed on either side shows up here.
/// </summary>
public sealed partial class PrometheusScrapeTests(LiveMonitoringStack stack, ITestOutputHelper output) : IClassFixture<LiveMonitoringStack>
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
    public async Task TemplateVariables_LivePrometheus_ResolveToTheScrapedDaemon()
    {
        using JsonDocument dashboard = GrafanaDashboard.Load();
        int checkedVariables = 0;

        foreach (JsonElement variable in dashboard.RootElement.GetProperty("templating").GetProperty("list").EnumerateArray())
        {
            if (variable.GetProperty("type").GetString() != "query")
            {
                continue;
            }

            // Grafana runs label_values(METRIC, LABEL) as the series-labels API call below.
            string query = variable.GetProperty("query").GetProperty("query").GetString()!;
            Match call = LabelValues().Match(query);
            Assert.True(call.Success, $"variable {variable.GetProperty("name")}: unsupported query {query}");
            JsonElement values = await stack.GetAsync(
                $"/api/v1/label/{call.Groups[2].Value}/values?match[]={Uri.EscapeDataString(call.Groups[1].Value)}");
            output.WriteLine($"${variable.GetProperty("name").GetString()}: {values}");
            Assert.True(values.GetArrayLength() > 0, $"variable {variable.GetProperty("name")} has no values: {query}");
            checkedVariables++;
        }

        Assert.True(checkedVariables > 0, "the dashboard has no query variable (instance picker)");
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

    [GeneratedRegex(@"^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$")]
    private static partial Regex LabelValues();

    private static bool IsNumber(string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v);
}
