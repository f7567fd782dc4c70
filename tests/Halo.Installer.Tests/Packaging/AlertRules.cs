using Halo.Testing;
using YamlDotNet.RepresentationModel;

namespace Halo.Installer.Tests.Packaging;

/// <summary>One alerting rule of config/prometheus/halo-alerts.yml.</summary>
internal sealed record AlertRule(string Name, string Expr);

/// <summary>Reads the alert rules the way Prometheus does (groups -> rules -> alert/expr).</summary>
internal static class AlertRules
{
    public static string Dir => Path.Combine(TestPaths.RepoRoot, "config", "prometheus");

    public static string FilePath => Path.Combine(Dir, "halo-alerts.yml");

    public static IReadOnlyList<AlertRule> Load()
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(FilePath))
        {
            yaml.Load(reader);
        }

        var rules = new List<AlertRule>();
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        foreach (YamlNode group in (YamlSequenceNode)root["groups"])
        {
            foreach (YamlNode node in (YamlSequenceNode)((YamlMappingNode)group)["rules"])
            {
                var rule = (YamlMappingNode)node;
                rules.Add(new AlertRule(((YamlScalarNode)rule["alert"]).Value!, ((YamlScalarNode)rule["expr"]).Value!.Trim()));
            }
        }

        return rules;
    }
}
