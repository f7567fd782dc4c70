using System.Text.Json;
using System.Text.Json.Nodes;
using Halo.Installer.Doctor.Checks;

namespace Halo.Installer.Doctor;

/// <summary>All check results of one run, its summary and exit code, and the `--json` form (schema in README.md).</summary>
public sealed class DoctorReport
{
    public DoctorReport(IReadOnlyList<CheckResult> checks)
    {
        Checks = checks;
    }

    public IReadOnlyList<CheckResult> Checks { get; }

    public int Count(CheckStatus status) => Checks.Count(c => c.Status == status);

    /// <summary>0 all ok (skips are fine), 1 warnings only, 2 at least one failure (DESIGN.md section 6).</summary>
    public int ExitCode => Count(CheckStatus.Fail) > 0 ? 2 : Count(CheckStatus.Warn) > 0 ? 1 : 0;

    public CheckResult? this[string id] => Checks.FirstOrDefault(c => c.Id == id);

    /// <summary>The standard checks, in report order.</summary>
    public static IReadOnlyList<IDoctorCheck> AllChecks() =>
    [
        new OsReleaseCheck(), new KernelCheck(), new GpuCheck(), new RocmCheck(), new RocminfoCheck(), new OpenClCheck(),
        new HaloUserCheck(), new TtmLimitCheck(), new FirmwareCheck(), new ForbiddenRuntimeCheck(), new InterpreterProcessCheck(),
        new ServiceUnitCheck(), new ServiceActiveCheck(), new EndpointCheck(), new ConfigFileCheck(), new ModelCheck(),
        new DiskSpaceCheck(), new PermissionsCheck(),
    ];

    /// <summary>Runs every check; a check that throws becomes a failure naming the exception, the others still run.</summary>
    public static async Task<DoctorReport> RunAsync(DoctorContext context, IReadOnlyList<IDoctorCheck>? checks = null, CancellationToken cancellationToken = default)
    {
        var results = new List<CheckResult>();
        foreach (IDoctorCheck check in checks ?? AllChecks())
        {
            try
            {
                results.Add(await check.RunAsync(context, cancellationToken));
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                results.Add(new CheckResult(check.Id, check.Title, CheckStatus.Fail, $"the check itself failed: {e.GetType().Name}: {e.Message}",
                    "report this with the output of halo doctor --json"));
            }
        }

        return new DoctorReport(results);
    }

    public static string StatusName(CheckStatus status) => status switch
    {
        CheckStatus.Ok => "ok",
        CheckStatus.Warn => "warn",
        CheckStatus.Fail => "fail",
        _ => "skip",
    };

    public JsonObject ToJson()
    {
        var checks = new JsonArray();
        foreach (CheckResult check in Checks)
        {
            var item = new JsonObject
            {
                ["id"] = check.Id,
                ["title"] = check.Title,
                ["status"] = StatusName(check.Status),
                ["finding"] = check.Finding,
                ["hint"] = check.Hint,
            };
            if (check.Details is not null)
            {
                foreach ((string key, JsonNode? value) in check.Details)
                {
                    item[key] = value?.DeepClone();
                }
            }

            checks.Add(item);
        }

        return new JsonObject
        {
            ["checks"] = checks,
            ["summary"] = new JsonObject
            {
                ["ok"] = Count(CheckStatus.Ok),
                ["warn"] = Count(CheckStatus.Warn),
                ["fail"] = Count(CheckStatus.Fail),
                ["skip"] = Count(CheckStatus.Skip),
            },
        };
    }

    public string ToJsonText() =>
        ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
