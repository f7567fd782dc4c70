using System.Collections;
using Halo.Core.Configuration;
using Halo.Testing;

namespace Halo.Core.Tests.Configuration;

public class HaloOptionsLoaderTests
{
    private static readonly (string, string, string)[] NoFlags = [];

    [Fact]
    public void Parse_DocumentedDefaultFile_EqualsBuiltInDefaults()
    {
        string yaml = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "config", "halo.yaml"));

        HaloOptions parsed = HaloOptionsLoader.Parse(yaml);

        var defaults = new HaloOptions();
        Assert.Equal(Describe(defaults), Describe(parsed));
    }

    [Fact]
    public void Parse_DocumentedDefaultFile_MentionsEveryDeclaredKey()
    {
        string yaml = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "config", "halo.yaml"));

        foreach (ConfigKey key in ConfigKeys.All)
        {
            string name = key.Path[(key.Path.IndexOf('.') + 1)..];
            Assert.Contains("\n  " + name + ":", yaml);
        }
    }

    [Fact]
    public void Parse_EmptyText_GivesDefaults()
    {
        HaloOptions options = HaloOptionsLoader.Parse("");

        Assert.Equal("127.0.0.1:8180", options.Server.Listen[0].Text);
        Assert.True(options.Server.Listen[0].IsLoopback);
        Assert.Equal("/var/lib/halo/models", options.Model.ModelsDir);
    }

    [Fact]
    public void Parse_SeveralProblems_ListsThemAll()
    {
        const string yaml = """
            server:
              listen: ["nonsense", "127.0.0.1:99999"]
              max_body_bytes: lots
            model:
              backend: tpu
              colour: blue
            scheduler:
              slots: 0
            extra:
              x: 1
            """;

        var e = Assert.Throws<ConfigErrorsException>(() => HaloOptionsLoader.Parse(yaml));

        Assert.Contains(e.Errors, m => m.Contains("halo.yaml:2:") && m.Contains("server.listen[0]"));
        Assert.Contains(e.Errors, m => m.Contains("server.listen[1]") && m.Contains("99999"));
        Assert.Contains(e.Errors, m => m.Contains("halo.yaml:3:") && m.Contains("server.max_body_bytes: expected an integer, got 'lots'"));
        Assert.Contains(e.Errors, m => m.Contains("model.backend") && m.Contains("tpu"));
        Assert.Contains(e.Errors, m => m.Contains("halo.yaml:6:") && m.Contains("unknown key 'model.colour'"));
        Assert.Contains(e.Errors, m => m.Contains("scheduler.slots: 0"));
        Assert.Contains(e.Errors, m => m.Contains("halo.yaml:9:") && m.Contains("unknown section 'extra'"));
        Assert.Contains(e.Errors, m => m == "server.listen: at least one address is needed");
        Assert.Equal(8, e.Errors.Count);
    }

    [Fact]
    public void Parse_BrokenYaml_ReportsLineAndColumn()
    {
        var e = Assert.Throws<ConfigErrorsException>(() => HaloOptionsLoader.Parse("server:\n  listen: [\"a\"\n  x: {"));

        Assert.Single(e.Errors);
        Assert.StartsWith("halo.yaml", e.Errors[0], StringComparison.Ordinal);
        Assert.Contains("not valid YAML", e.Errors[0]);
    }

    [Fact]
    public void Parse_ListWhereScalarExpected_NamesTheKey()
    {
        var e = Assert.Throws<ConfigErrorsException>(() => HaloOptionsLoader.Parse("model:\n  path: [a, b]\n"));

        Assert.Contains("model.path: expected a single value, not a list", e.Errors[0]);
    }

    [Fact]
    public void Parse_DoctorSection_IsReadAndValidated()
    {
        HaloOptions options = HaloOptionsLoader.Parse("doctor:\n  forbidden_runtimes: [python3]\n  allowed: [/usr/bin/perl]\n  interpreter_rss_mb: 64\n");

        Assert.Equal(["python3"], options.Doctor.ForbiddenRuntimes);
        Assert.Equal(["/usr/bin/perl"], options.Doctor.Allowed);
        Assert.Equal(64, options.Doctor.InterpreterRssMb);

        var e = Assert.Throws<ConfigErrorsException>(() => HaloOptionsLoader.Parse("doctor:\n  forbidden_runtimes: []\n  allowed: [perl]\n  interpreter_rss_mb: 0\n"));
        Assert.Equal(3, e.Errors.Count);
        Assert.Contains(e.Errors, m => m.StartsWith("doctor.allowed[0]", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_LmHead_IsReadAndValidated()
    {
        Assert.Equal("int4", HaloOptionsLoader.Parse("model:\n  lm_head: int4\n").Model.LmHead);
        Assert.Equal("int6", HaloOptionsLoader.Parse("model:\n  lm_head: int6\n").Model.LmHead);
        Assert.Equal("", HaloOptionsLoader.Parse("").Model.LmHead);

        var e = Assert.Throws<ConfigErrorsException>(() => HaloOptionsLoader.Parse("model:\n  lm_head: q4\n"));
        Assert.Equal(["model.lm_head: 'q4' is not source, int8, int6 or int4"], e.Errors);
    }

    [Fact]
    public void Load_EnvironmentThenFlags_LaterSourceWins()
    {
        using var dir = new TempDir();
        string file = dir.File("halo.yaml");
        File.WriteAllText(file, "model:\n  path: /from/yaml\n  threads: 2\nscheduler:\n  slots: 3\n");
        var env = new Hashtable { ["HALO_MODEL_PATH"] = "/from/env", ["HALO_SCHEDULER_SLOTS"] = "5", ["HALO_SERVER_LISTEN"] = "127.0.0.1:1, [::1]:2" };

        HaloOptions options = HaloOptionsLoader.Load(file, env, [("model.path", "/from/flag", "--model")]);

        Assert.Equal("/from/flag", options.Model.Path);
        Assert.Equal(5, options.Scheduler.Slots);
        Assert.Equal(2, options.Model.Threads);
        Assert.Equal(["127.0.0.1:1", "[::1]:2"], options.Server.Listen.Select(a => a.Text));
    }

    [Fact]
    public void Load_BadEnvironmentValue_NamesTheVariable()
    {
        var env = new Hashtable { ["HALO_SCHEDULER_QUEUE_SIZE"] = "many" };

        var e = Assert.Throws<ConfigErrorsException>(() => HaloOptionsLoader.Load("/nonexistent/default.yaml", env, NoFlags));

        Assert.Contains(e.Errors, m => m == "/nonexistent/default.yaml: config file not found");
        Assert.Contains(e.Errors, m => m == "HALO_SCHEDULER_QUEUE_SIZE: scheduler.queue_size: expected an integer, got 'many'");
    }

    [Fact]
    public void Load_ApiKeyFile_BadLineIsReportedWithLineNumber()
    {
        using var dir = new TempDir();
        string keys = dir.File("keys");
        File.WriteAllText(keys, $"# operators\n{ApiKeyHashes.Hash("secret")}  -\nnot-a-hash\n");
        var env = new Hashtable { ["HALO_AUTH_API_KEY_FILE"] = keys };

        var e = Assert.Throws<ConfigErrorsException>(() => HaloOptionsLoader.Load(dir.File("absent.yaml"), env, NoFlags));

        Assert.Contains(e.Errors, m => m == $"auth.api_key_file: {keys}:3: not a SHA-256 hex hash");
    }

    [Fact]
    public void Matches_KeyAgainstStoredHashes_OnlyTheRightKeyPasses()
    {
        var errors = new List<string>();
        List<byte[]> hashes = ApiKeyHashes.Load(new AuthOptions { ApiKeys = ["sha256:" + ApiKeyHashes.Hash("k1"), ApiKeyHashes.Hash("k2").ToUpperInvariant()] }, errors);

        Assert.Empty(errors);
        Assert.True(ApiKeyHashes.Matches("k1", hashes));
        Assert.True(ApiKeyHashes.Matches("k2", hashes));
        Assert.False(ApiKeyHashes.Matches("k3", hashes));
        Assert.False(ApiKeyHashes.Matches("", hashes));
    }

    [Theory]
    [InlineData("127.0.0.1:8180", true)]
    [InlineData("[::1]:0", true)]
    [InlineData("0.0.0.0:80", false)]
    [InlineData("unix:/run/halo/halo.sock", true)]
    public void TryParse_ValidAddress_ParsesWithLoopbackFlag(string text, bool loopback)
    {
        Assert.True(ListenAddress.TryParse(text, out ListenAddress? address, out _));
        Assert.Equal(loopback, address.IsLoopback);
    }

    [Theory]
    [InlineData("8180")]
    [InlineData("example.com:80")]
    [InlineData("unix:relative.sock")]
    [InlineData("127.0.0.1:-1")]
    public void TryParse_InvalidAddress_Fails(string text)
    {
        Assert.False(ListenAddress.TryParse(text, out _, out string error));
        Assert.Contains(text, error);
    }

    private static string Describe(HaloOptions o) =>
        string.Join("|",
            string.Join(",", o.Server.Listen.Select(a => a.Text)), o.Server.MaxBodyBytes, o.Server.DrainTimeoutSeconds, o.Server.RetryAfterSeconds,
            o.Model, o.Scheduler, string.Join(",", o.Auth.ApiKeys), o.Auth.ApiKeyFile, string.Join(",", o.Auth.PublicPaths),
            o.Logging, o.Metrics, string.Join(",", o.Doctor.ForbiddenRuntimes), string.Join(",", o.Doctor.Allowed), o.Doctor.InterpreterRssMb);
}
