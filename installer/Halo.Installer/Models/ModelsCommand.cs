using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Halo.Core.Formats;
using Spectre.Console;

namespace Halo.Installer.Models;

/// <summary>
/// <c>halo models synth | pull | list | verify | rm | sbom</c> (DESIGN.md sections 4 and 8). The work is done by
/// the library beside this file (<see cref="ModelPuller"/>, <see cref="ModelStore"/>, <see cref="ModelSbom"/>);
/// this file parses flags, shows progress and maps failures to one line and exit code 1.
/// </summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var command = new Command("models", "Synthesize, download, list, verify and remove models");
        command.Subcommands.Add(SynthCommand.Create());
        command.Subcommands.Add(CreatePull());
        command.Subcommands.Add(CreateList());
        command.Subcommands.Add(CreateVerify());
        command.Subcommands.Add(CreateRemove());
        command.Subcommands.Add(CreateSbom());
        return command;
    }

    /// <summary>The model reader the SBOM uses to read config, shapes and tokenizer.</summary>
    internal static IModelSource OpenModel(string path) => ModelFile.Open(path);

    private static Option<string> DirOption() => new("--dir")
    {
        Description = $"Models directory (default: ${ModelsEnvironment.DirVariable} or {ModelsEnvironment.DefaultDir})",
    };

    private static Option<bool> JsonOption() => new("--json") { Description = "Print one JSON object instead of a table" };

    private static Command CreatePull()
    {
        var target = new Argument<string>("NAME|URL") { Description = "A catalog name (config/models.yaml) or an http(s) URL of a model file" };
        var sha = new Option<string>("--sha256") { Description = "Expected SHA-256 of the file (URL pulls)" };
        var name = new Option<string>("--name") { Description = "Local model name (default: catalog name or the URL's file name)" };
        var dir = DirOption();
        var parallel = new Option<int>("--parallel") { Description = "Range requests in flight", DefaultValueFactory = _ => 4 };
        var command = new Command("pull", $"Download a model with resume, retries and sha256 verification (mirror: ${ModelsEnvironment.EndpointVariable})")
        {
            target, sha, name, dir, parallel,
        };
        command.SetAction((parse, ct) => Guard("pull", async () =>
        {
            if (parse.GetValue(parallel) is < 1 or > 64)
            {
                Console.Error.WriteLine("halo models pull: --parallel must be 1..64");
                return Cli.UsageError;
            }

            var store = new ModelStore(ModelsEnvironment.ResolveDir(parse.GetValue(dir)));
            var request = new PullRequest { Target = parse.GetValue(target)!, Name = parse.GetValue(name), Sha256 = parse.GetValue(sha) };
            PullResult result = await ProgressView.RunAsync(async (progress, log) =>
            {
                using HttpClient http = HttpDownloader.CreateHttpClient();
                var downloader = new HttpDownloader(http, new DownloadOptions { Parallelism = parse.GetValue(parallel), Log = log });
                var puller = new ModelPuller(store, ModelCatalog.LoadDefault(), downloader, ModelsEnvironment.ResolveEndpoint(), log,
                    (modelDir, manifest) => ModelSbom.WriteFor(modelDir, manifest, OpenModel));
                return await puller.PullAsync(request, progress, ct);
            });

            if (result.AlreadyPresent)
            {
                Console.Out.WriteLine($"{result.Name}: already present in {result.Directory} ({ProgressView.Bytes(result.Manifest.TotalSize)}); `halo models verify {result.Name}` re-hashes it");
                return Cli.Ok;
            }

            foreach (DownloadResult download in result.Downloads)
            {
                string resumed = download.ResumedBytes > 0 ? $", resumed {ProgressView.Bytes(download.ResumedBytes)}" : "";
                Console.Out.WriteLine($"{Path.GetFileName(download.Path)}: {ProgressView.Bytes(download.Size)} sha256 {download.Sha256} ({download.Sha256Source}{resumed})");
            }

            Console.Out.WriteLine($"{result.Name}: pulled into {result.Directory}{(result.SbomPath is null ? "" : $", SBOM {Path.GetFileName(result.SbomPath)}")}");
            return Cli.Ok;
        }, ct));
        return command;
    }

    private static Command CreateList()
    {
        var dir = DirOption();
        var json = JsonOption();
        var command = new Command("list", "List the models in the models directory") { dir, json };
        command.SetAction((parse, ct) => Guard("list", () =>
        {
            var store = new ModelStore(ModelsEnvironment.ResolveDir(parse.GetValue(dir)));
            IReadOnlyList<InstalledModel> models = store.List();
            if (parse.GetValue(json))
            {
                var array = new JsonArray();
                foreach (InstalledModel model in models)
                {
                    array.Add(new JsonObject
                    {
                        ["name"] = model.Name,
                        ["path"] = model.Directory,
                        ["main"] = model.MainPath,
                        ["format"] = model.Format,
                        ["size"] = model.Size,
                        ["status"] = StatusText(model.Status),
                        ["source"] = model.Manifest?.Source,
                        ["pulled_at"] = model.Manifest?.PulledAt,
                        ["problem"] = model.Problem,
                    });
                }

                Console.Out.WriteLine(new JsonObject { ["dir"] = store.Root, ["models"] = array }.ToJsonString(JsonIndented));
                return Task.FromResult(Cli.Ok);
            }

            if (models.Count == 0)
            {
                Console.Out.WriteLine($"no models in {store.Root} (try `halo models pull {ModelCatalog.LoadDefault().DefaultModel ?? "NAME"}`)");
                return Task.FromResult(Cli.Ok);
            }

            var table = new Table().AddColumns("NAME", "FORMAT", "SIZE", "VERIFIED", "SOURCE");
            foreach (InstalledModel model in models)
            {
                string verified = model.Problem is null ? StatusText(model.Status) : $"{StatusText(model.Status)}: {model.Problem}";
                table.AddRow(Markup.Escape(model.Name), model.Format, ProgressView.Bytes(model.Size), Markup.Escape(verified), Markup.Escape(model.Manifest?.Source ?? "-"));
            }

            AnsiConsole.Write(table);
            return Task.FromResult(Cli.Ok);
        }, ct));
        return command;
    }

    private static Command CreateVerify()
    {
        var name = new Argument<string?>("NAME") { Description = "Model to re-hash (default: all)", Arity = ArgumentArity.ZeroOrOne };
        var dir = DirOption();
        var json = JsonOption();
        var command = new Command("verify", "Re-hash model files against their manifest; exit 1 on any mismatch") { name, dir, json };
        command.SetAction((parse, ct) => Guard("verify", async () =>
        {
            var store = new ModelStore(ModelsEnvironment.ResolveDir(parse.GetValue(dir)));
            string? only = parse.GetValue(name);
            IReadOnlyList<string> names = only is not null ? [only] : store.List().Select(m => m.Name).ToList();
            bool asJson = parse.GetValue(json);
            var reports = new List<VerifyReport>();
            var failures = new List<string>();
            foreach (string model in names)
            {
                try
                {
                    VerifyReport report = asJson
                        ? await store.VerifyAsync(model, null, ct)
                        : await ProgressView.RunAsync((progress, _) => store.VerifyAsync(model, progress, ct));
                    reports.Add(report);
                }
                catch (ModelStoreException ex) when (only is null)
                {
                    failures.Add(ex.Message);
                }
            }

            if (asJson)
            {
                var array = new JsonArray();
                foreach (VerifyReport report in reports)
                {
                    var files = new JsonArray();
                    foreach (FileCheck file in report.Files)
                    {
                        files.Add(new JsonObject { ["path"] = file.Path, ["status"] = file.Status, ["detail"] = file.Detail });
                    }

                    array.Add(new JsonObject { ["name"] = report.Name, ["ok"] = report.Ok, ["files"] = files });
                }

                var errors = new JsonArray();
                failures.ForEach(f => errors.Add(f));
                Console.Out.WriteLine(new JsonObject { ["models"] = array, ["errors"] = errors }.ToJsonString(JsonIndented));
            }
            else
            {
                foreach (VerifyReport report in reports)
                {
                    foreach (FileCheck file in report.Files.Where(f => f.Status != "ok"))
                    {
                        Console.Error.WriteLine($"halo models verify: {report.Name}: {file.Detail}");
                    }

                    Console.Out.WriteLine(report.Ok
                        ? $"{report.Name}: ok ({report.Files.Count} files match manifest.json)"
                        : $"{report.Name}: FAILED ({report.Files.Count(f => f.Status != "ok")} of {report.Files.Count} files do not match; `halo models pull` fetches them again)");
                }

                failures.ForEach(f => Console.Error.WriteLine($"halo models verify: {f}"));
            }

            return reports.All(r => r.Ok) && failures.Count == 0 ? Cli.Ok : Cli.Failure;
        }, ct));
        return command;
    }

    private static Command CreateRemove()
    {
        var name = new Argument<string>("NAME") { Description = "Model to delete with all its files" };
        var dir = DirOption();
        var command = new Command("rm", "Delete a model directory") { name, dir };
        command.SetAction((parse, ct) => Guard("rm", () =>
        {
            var store = new ModelStore(ModelsEnvironment.ResolveDir(parse.GetValue(dir)));
            InstalledModel model = store.Get(parse.GetValue(name)!);
            store.Remove(model.Name);
            Console.Out.WriteLine($"removed {model.Name} ({ProgressView.Bytes(model.Size)}) from {store.Root}");
            return Task.FromResult(Cli.Ok);
        }, ct));
        return command;
    }

    private static Command CreateSbom()
    {
        var name = new Argument<string>("NAME") { Description = "Model to describe" };
        var dir = DirOption();
        var output = new Option<string>("--out") { Description = "Write the BOM here ('-' for stdout) instead of <model dir>/model.cdx.json" };
        var command = new Command("sbom", "Write a CycloneDX 1.6 ML-BOM for a model (hashes, format, quantization, shapes, tokenizer, license, source)")
        {
            name, dir, output,
        };
        command.SetAction((parse, ct) => Guard("sbom", () =>
        {
            var store = new ModelStore(ModelsEnvironment.ResolveDir(parse.GetValue(dir)));
            InstalledModel model = store.Get(parse.GetValue(name)!);
            if (model.Manifest is null)
            {
                throw new ModelStoreException($"model '{model.Name}' is not complete ({model.Problem}); pull it first");
            }

            SbomResult result = ModelSbom.WriteFor(model.Directory, model.Manifest, OpenModel);
            foreach (string warning in result.Warnings)
            {
                Console.Error.WriteLine($"warning: {warning}");
            }

            string? target = parse.GetValue(output);
            if (target == "-")
            {
                Console.Out.WriteLine(File.ReadAllText(result.Path!));
            }
            else if (target is not null)
            {
                File.Copy(result.Path!, target, overwrite: true);
                Console.Out.WriteLine(Path.GetFullPath(target));
            }
            else
            {
                Console.Out.WriteLine(result.Path);
            }

            return Task.FromResult(Cli.Ok);
        }, ct));
        return command;
    }

    internal static string StatusText(ModelStatus status) => status switch
    {
        ModelStatus.Verified => "verified",
        ModelStatus.Unpinned => "unpinned",
        ModelStatus.Incomplete => "incomplete",
        _ => "damaged",
    };

    private static readonly JsonSerializerOptions JsonIndented = new() { WriteIndented = true };

    /// <summary>Runs a subcommand body and turns the failures an operator can act on into one line and exit 1.</summary>
    internal static async Task<int> Guard(string verb, Func<Task<int>> body, CancellationToken cancellationToken)
    {
        try
        {
            return await body();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Console.Error.WriteLine($"halo models {verb}: interrupted; run the same command again to resume");
            return Cli.Failure;
        }
        catch (UnauthorizedAccessException ex)
        {
            Console.Error.WriteLine($"halo models {verb}: {ex.Message} (run as root or the halo user, or choose --dir)");
            return Cli.Failure;
        }
        catch (Exception ex) when (ex is ModelStoreException or InvalidModelException or IOException)
        {
            Console.Error.WriteLine($"halo models {verb}: {ex.Message}");
            return Cli.Failure;
        }
    }
}
