using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Halo.Installer.Doctor.Checks;

/// <summary>
/// `models.present`: at least one model under the models directory, each with a manifest.json whose files
/// have the recorded size and sha256 (DESIGN.md section 8; the shape `halo models pull` writes:
/// `{"schema": 1, "name", "files": [{"path", "size", "sha256"}], ...}`).
/// </summary>
public sealed class ModelCheck : DoctorCheck
{
    public const string ManifestName = "manifest.json";

    public override string Id => "models.present";

    public override string Title => "Model";

    public override async Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken)
    {
        string dir = context.Settings.ModelsDir;
        const string pull = "halo models pull bitnet-b1.58-2b-4t-gguf (as the halo user or with sudo)";
        if (!context.Root.DirectoryExists(dir))
        {
            return Fail($"no models directory {dir}", "sudo halo provision, then " + pull);
        }

        var verified = new List<string>();
        var problems = new List<string>();
        var unverified = new List<string>();
        var models = new JsonArray();
        foreach (string modelDir in context.Root.List(dir))
        {
            if (!context.Root.DirectoryExists(modelDir) || Path.GetFileName(modelDir).StartsWith('.'))
            {
                continue;
            }

            string name = Path.GetFileName(modelDir);
            if (!context.Root.FileExists(modelDir + "/" + ManifestName))
            {
                unverified.Add(name);
                continue;
            }

            string? problem = await VerifyAsync(context.Root, modelDir, cancellationToken);
            models.Add(new JsonObject { ["name"] = name, ["verified"] = problem is null, ["problem"] = problem });
            if (problem is null)
            {
                verified.Add(name);
            }
            else
            {
                problems.Add($"{name}: {problem}");
            }
        }

        var details = new JsonObject { ["models"] = models };
        if (problems.Count > 0)
        {
            return Fail(string.Join("; ", problems), $"halo models verify; re-pull a damaged model: halo models rm NAME && halo models pull NAME") with { Details = details };
        }

        if (verified.Count > 0)
        {
            string loose = unverified.Count > 0 ? $" ({unverified.Count} without a manifest: {string.Join(", ", unverified)})" : "";
            return Ok($"{string.Join(", ", verified)} verified (sha256){loose}") with { Details = details };
        }

        return unverified.Count > 0
            ? Warn($"{string.Join(", ", unverified)} in {dir} without manifest.json: an interrupted pull, or not verifiable", pull) with { Details = details }
            : Fail($"no model in {dir}", pull) with { Details = details };
    }

    /// <summary>Null when every file in the manifest has its size and sha256; otherwise the first problem.</summary>
    public static async Task<string?> VerifyAsync(SystemRoot root, string modelDir, CancellationToken cancellationToken)
    {
        JsonNode? manifest;
        try
        {
            manifest = JsonNode.Parse(root.ReadText(modelDir + "/" + ManifestName) ?? "");
        }
        catch (JsonException e)
        {
            return $"manifest.json is not JSON ({e.Message})";
        }

        if (manifest?["files"] is not JsonArray files || files.Count == 0)
        {
            return "manifest.json lists no files";
        }

        foreach (JsonNode? file in files)
        {
            string? path = file?["path"]?.GetValue<string>();
            string? sha256 = file?["sha256"]?.GetValue<string>();
            long size = file?["size"]?.GetValue<long>() ?? -1;
            if (path is null || sha256 is null || path.StartsWith('/') || path.Split('/').Contains(".."))
            {
                return "manifest.json has a malformed file entry";
            }

            string host = root.Host(modelDir + "/" + path);
            if (!File.Exists(host))
            {
                return $"{path} is missing";
            }

            long actual = new FileInfo(host).Length;
            if (size >= 0 && actual != size)
            {
                return $"{path} is {actual} bytes, the manifest says {size}";
            }

            await using FileStream stream = new(host, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan | FileOptions.Asynchronous);
            string digest = System.Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
            if (!digest.Equals(sha256, StringComparison.OrdinalIgnoreCase))
            {
                return $"{path} sha256 {digest[..12]}... does not match the manifest's {sha256[..Math.Min(12, sha256.Length)]}...";
            }
        }

        return null;
    }
}
