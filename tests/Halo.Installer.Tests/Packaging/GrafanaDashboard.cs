using System.Text.Json;
using Halo.Testing;

namespace Halo.Installer.Tests.Packaging;

/// <summary>One query of a dashboard panel.</summary>
internal sealed record PanelQuery(string Panel, string RefId, string Expr, bool Instant);

/// <summary>config/grafana/halo-dashboard.json read as Grafana reads it: rows, panels, their PromQL targets.</summary>
internal static class GrafanaDashboard
{
    public static string FilePath => Path.Combine(TestPaths.RepoRoot, "config", "grafana", "halo-dashboard.json");

    public static JsonDocument Load() => JsonDocument.Parse(File.ReadAllText(FilePath));

    /// <summary>Every panel that is not a row, nested row panels included.</summary>
    public static IReadOnlyList<JsonElement> Panels(JsonDocument dashboard)
    {
        var panels = new List<JsonElement>();
        void Walk(JsonElement list)
        {
            foreach (JsonElement panel in list.EnumerateArray())
            {
                if (panel.GetProperty("type").GetString() == "row")
                {
                    if (panel.TryGetProperty("panels", out JsonElement nested))
                    {
                        Walk(nested);
                    }
                }
                else
                {
                    panels.Add(panel);
                }
            }
        }

        Walk(dashboard.RootElement.GetProperty("panels"));
        return panels;
    }

    public static IReadOnlyList<PanelQuery> Queries(JsonDocument dashboard)
    {
        var queries = new List<PanelQuery>();
        foreach (JsonElement panel in Panels(dashboard))
        {
            string title = panel.GetProperty("title").GetString()!;
            foreach (JsonElement target in panel.GetProperty("targets").EnumerateArray())
            {
                bool instant = target.TryGetProperty("instant", out JsonElement i) && i.GetBoolean();
                queries.Add(new PanelQuery(title, target.GetProperty("refId").GetString()!, target.GetProperty("expr").GetString()!, instant));
            }
        }

        return queries;
    }

    /// <summary>
    /// The expression as Grafana sends it to Prometheus: dashboard variables replaced with the values that
    /// select everything ($instance = All = ".*") and the rate interval with <paramref name="rateInterval"/>.
    /// </summary>
    public static string Interpolate(string expr, string rateInterval) => expr
        .Replace("$__rate_interval", rateInterval, StringComparison.Ordinal)
        .Replace("$instance", ".*", StringComparison.Ordinal);
}
