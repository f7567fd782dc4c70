using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Models;
using Halo.Engine.Profiling;
using Halo.Installer.Run;

namespace Halo.Installer.Bench;

/// <summary>
/// `halo bench` (DESIGN.md section 4): prefill and decode speed, load time and peak memory, each repetition in a
/// fresh process of halo itself (so page cache is warm but nothing else carries over), reported as
/// min/median/max. --breakdown adds the time per generated token spent in each op; --parallel N adds concurrent
/// decoding of N streams through the daemon's serving loop (<see cref="ParallelBench"/>).
/// </summary>
internal static class BenchCommand
{
    private static readonly string[] Metrics = ["pp_tps", "tg_tps", "tg_d0_tps", "load_ms", "peak_rss_mib"];

    public static Command Create()
    {
        var engine = new EngineOptions();
        var pp = new Option<int>("--pp") { Description = "Prompt tokens for the prefill measurement", DefaultValueFactory = _ => 512 };
        var tg = new Option<int>("--tg") { Description = "Decode steps per measurement", DefaultValueFactory = _ => 128 };
        var reps = new Option<int>("--reps") { Description = "Repetitions, each in a fresh process", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print {\"summary\": ..., \"settings\": ...} as JSON" };
        var breakdown = new Option<bool>("--breakdown") { Description = "Also report the time per generated token spent in each op" };
        var parallel = new Option<int>("--parallel")
        {
            Description = $"Also decode N concurrent streams ({ParallelBench.PromptTokens}-token prompts, --tg tokens each) through the daemon's scheduler and report aggregate tok/s, speed-up over one stream and inter-token latency",
        };
        var server = new Option<string>("--server")
        {
            Description = "Instead of loading a model, drive the daemon at this URL (e.g. http://127.0.0.1:8180) with --parallel streaming clients, one stream then N",
        };
        var apiKeyFile = new Option<FileInfo>("--api-key-file") { Description = "With --server: a file holding the API key to send as Authorization: Bearer" };
        var child = new Option<bool>("--repetition") { Description = "Run one repetition and print its JSON (used by halo bench itself)", Hidden = true };

        var command = new Command("bench", "Measure prefill and decode speed, load time and peak memory");
        engine.AddTo(command);
        engine.Model.Required = false;   // --server needs no model; the validator below asks for one otherwise
        foreach (Option o in (Option[])[pp, tg, reps, json, breakdown, parallel, server, apiKeyFile, child])
        {
            command.Options.Add(o);
        }

        foreach (Option<int> o in (Option<int>[])[pp, tg, reps])
        {
            o.Validators.Add(r =>
            {
                if (r.GetValueOrDefault<int>() < 1)
                {
                    r.AddError($"{o.Name} must be at least 1");
                }
            });
        }

        parallel.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 0)
            {
                r.AddError("--parallel must be 0 (off) or a number of streams");
            }
        });
        command.Validators.Add(r =>
        {
            // An option left at its default has no result here yet (GetValue would read 0): --tg's default is fine.
            if (r.GetValue(parallel) > 0 && r.GetResult(tg) is not null && r.GetValue(tg) < 2)
            {
                r.AddError("--parallel needs --tg of at least 2 (inter-token gaps)");
            }

            if (r.GetValue(server) is { } url)
            {
                if (ServerUrl(url) is null)
                {
                    r.AddError($"--server {url}: expected an http:// or https:// URL");
                }

                if (r.GetValue(parallel) < 1)
                {
                    r.AddError("--server needs --parallel N (the number of concurrent streams)");
                }
            }
            else if (r.GetValue(engine.Model) is null)
            {
                r.AddError("Option '--model' is required (or --server URL to measure a running daemon).");
            }
        });

        command.SetAction(parse =>
        {
            var settings = new Settings(parse.GetValue(engine.Model)!, parse.GetValue(engine.Threads), parse.GetValue(engine.Backend)!,
                parse.GetValue(engine.Compat), parse.GetValue(engine.Act), parse.GetValue(engine.LmHead), parse.GetValue(pp), parse.GetValue(tg), parse.GetValue(reps), parse.GetValue(breakdown),
                parse.GetValue(parallel));
            if (parse.GetValue(server) is { } url)
            {
                return RunServer(ServerUrl(url)!, parse.GetValue(apiKeyFile), settings, parse.GetValue(json));
            }

            return parse.GetValue(child)
                ? RunRepetition(settings, engine.BackendOptions(parse))
                : RunAll(settings, parse.GetValue(json));
        });
        return command;
    }

    private static Uri? ServerUrl(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out Uri? url) && url.Scheme is "http" or "https" ? url : null;

    private sealed record Settings(string? Model, int Threads, string Backend, string? Compat, string? Act, string? LmHead, int Pp, int Tg, int Reps, bool Breakdown, int Parallel)
    {
        public string[] Metrics => Parallel > 0 ? [.. BenchCommand.Metrics, .. ParallelBench.Metrics] : BenchCommand.Metrics;
    }

    private static int RunAll(Settings s, bool json)
    {
        var results = new List<JsonObject>();
        for (int rep = 0; rep < s.Reps; rep++)
        {
            if (!json)
            {
                Console.Error.WriteLine($"halo bench: repetition {rep + 1}/{s.Reps}");
            }

            JsonObject? result = RunChild(s, out string error);
            if (result is null)
            {
                Console.Error.Write(error);
                return Cli.Failure;
            }

            results.Add(result);
        }

        JsonObject summary = Summarize(results, s.Metrics);
        var settings = new JsonObject
        {
            ["model"] = s.Model,
            ["backend"] = results[0]["backend"]!.GetValue<string>(),
            ["device"] = results[0]["device"]!.GetValue<string>(),
            ["threads"] = s.Threads,
            ["pp"] = s.Pp,
            ["tg"] = s.Tg,
            ["reps"] = s.Reps,
            ["compat"] = s.Compat,
            ["act"] = s.Act,
            ["lm_head"] = s.LmHead,
        };
        if (s.Parallel > 0)
        {
            settings["parallel"] = s.Parallel;
            settings["parallel_prompt"] = ParallelBench.PromptTokens;
        }

        var root = new JsonObject { ["summary"] = summary, ["settings"] = settings };
        if (s.Breakdown)
        {
            root["breakdown_ms_per_token"] = AverageBreakdown(results, "breakdown");
            root["prefill_breakdown_ms_per_token"] = AverageBreakdown(results, "prefill_breakdown");
            root["load_breakdown_ms"] = AverageBreakdown(results, "load_breakdown");
            root["load_breakdown_cpu_ms"] = AverageBreakdown(results, "load_breakdown_cpu");
            if (s.Parallel > 0)
            {
                root["parallel_breakdown_ms_per_step"] = AverageBreakdown(results, "parallel_breakdown");
            }
        }

        if (json)
        {
            Console.Out.WriteLine(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        else
        {
            PrintTable(summary, settings, s.Breakdown ? root["breakdown_ms_per_token"]!.AsObject() : null,
                s.Breakdown ? root["prefill_breakdown_ms_per_token"]!.AsObject() : null,
                s.Breakdown && s.Parallel > 0 ? root["parallel_breakdown_ms_per_step"]!.AsObject() : null,
                s.Breakdown ? (root["load_breakdown_ms"]!.AsObject(), root["load_breakdown_cpu_ms"]!.AsObject()) : null);
        }

        return Cli.Ok;
    }

    /// <summary>min/median/max of each metric over the repetitions.</summary>
    private static JsonObject Summarize(List<JsonObject> results, string[] metrics)
    {
        var summary = new JsonObject();
        foreach (string metric in metrics)
        {
            double[] values = results.Select(r => r[metric]!.GetValue<double>()).Order().ToArray();
            summary[metric] = new JsonObject
            {
                ["min"] = Math.Round(values[0], 2),
                ["median"] = Math.Round(values.Length % 2 == 1 ? values[values.Length / 2] : (values[values.Length / 2 - 1] + values[values.Length / 2]) / 2, 2),
                ["max"] = Math.Round(values[^1], 2),
            };
        }

        return summary;
    }

    /// <summary>--server: the parallel rounds against a running daemon, each repetition in this process.</summary>
    private static int RunServer(Uri url, FileInfo? apiKeyFile, Settings s, bool json)
    {
        try
        {
            string? apiKey = apiKeyFile is null ? null : File.ReadAllText(apiKeyFile.FullName).Trim();
            using HttpClient http = ServerBench.Client(url, apiKey);
            string model = ServerBench.ModelIdAsync(http).GetAwaiter().GetResult();
            var results = new List<JsonObject>();
            for (int rep = 0; rep < s.Reps; rep++)
            {
                if (!json)
                {
                    Console.Error.WriteLine($"halo bench: repetition {rep + 1}/{s.Reps} against {url}");
                }

                results.Add(ServerBench.RunRepetitionAsync(http, s.Parallel, s.Tg, rep).GetAwaiter().GetResult());
            }

            JsonObject summary = Summarize(results, ServerBench.Metrics);
            var settings = new JsonObject
            {
                ["server"] = url.AbsoluteUri,
                ["model"] = model,
                ["tg"] = s.Tg,
                ["reps"] = s.Reps,
                ["parallel"] = s.Parallel,
            };
            if (json)
            {
                Console.Out.WriteLine(new JsonObject { ["summary"] = summary, ["settings"] = settings }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            else
            {
                PrintTable(summary, settings, null, null, null, null);
            }

            return Cli.Ok;
        }
        catch (Exception e) when (e is HttpRequestException or BenchException or IOException or UnauthorizedAccessException or JsonException or TaskCanceledException)
        {
            Console.Error.WriteLine($"halo bench: {url}: {e.Message}");
            return Cli.Failure;
        }
    }

    private static JsonObject AverageBreakdown(List<JsonObject> results, string key)
    {
        var average = new JsonObject();
        foreach ((string op, JsonNode? _) in results[0][key]!.AsObject())
        {
            average[op] = Math.Round(results.Average(r => r[key]![op]!.GetValue<double>()), 4);
        }

        return average;
    }

    private static void PrintTable(JsonObject summary, JsonObject settings, JsonObject? breakdown, JsonObject? prefillBreakdown, JsonObject? parallelBreakdown,
        (JsonObject Wall, JsonObject Cpu)? load)
    {
        var o = new StringBuilder();
        o.AppendLine(CultureInfo.InvariantCulture, $"model   {settings["model"]}");
        if (settings["server"] is { } server)
        {
            o.AppendLine(CultureInfo.InvariantCulture, $"server  {server}, reps {settings["reps"]}");
            o.AppendLine(CultureInfo.InvariantCulture, $"parallel: {settings["parallel"]} streaming completions of {settings["tg"]} tokens, against 1 stream, timed at this client");
        }
        else
        {
            o.AppendLine(CultureInfo.InvariantCulture, $"backend {settings["backend"]} ({settings["device"]}), pp {settings["pp"]}, tg {settings["tg"]}, reps {settings["reps"]}{(settings["compat"] is null ? "" : ", compat " + settings["compat"])}{(settings["lm_head"] is null ? "" : ", lm head " + settings["lm_head"])}");
        }

        if (settings["parallel_prompt"] is { } prompt)
        {
            o.AppendLine(CultureInfo.InvariantCulture, $"parallel: {settings["parallel"]} streams of {prompt}-token prompts and {settings["tg"]} tokens, against 1 stream, through the serving loop");
        }

        o.AppendLine(CultureInfo.InvariantCulture, $"{"metric",-28}{"min",12}{"median",12}{"max",12}");
        foreach (string metric in summary.Select(kv => kv.Key))
        {
            JsonNode m = summary[metric]!;
            o.AppendLine(CultureInfo.InvariantCulture, $"{metric,-28}{m["min"]!.GetValue<double>(),12:F2}{m["median"]!.GetValue<double>(),12:F2}{m["max"]!.GetValue<double>(),12:F2}");
        }

        if (breakdown is not null)
        {
            AppendBreakdown(o, "op (decode, per token)", breakdown);
        }

        if (prefillBreakdown is not null)
        {
            AppendBreakdown(o, "op (prefill, per prompt token)", prefillBreakdown);
        }

        if (parallelBreakdown is not null)
        {
            AppendBreakdown(o, $"op ({settings["parallel"]} streams, per step)", parallelBreakdown);
        }

        if (load is { } phases)
        {
            o.AppendLine();
            o.AppendLine(CultureInfo.InvariantCulture, $"{"load phase",-28}{"ms",10}{"cpu ms",10}");
            foreach ((string phase, JsonNode? v) in phases.Wall)
            {
                string cpu = phases.Cpu[phase] is { } c ? c.GetValue<double>().ToString("F1", CultureInfo.InvariantCulture) : "";
                o.AppendLine(CultureInfo.InvariantCulture, $"{phase,-28}{v!.GetValue<double>(),10:F1}{cpu,10}");
            }
        }

        Console.Out.Write(o.ToString());
    }

    private static void AppendBreakdown(StringBuilder o, string title, JsonObject breakdown)
    {
        double total = breakdown.Sum(kv => kv.Value!.GetValue<double>());
        o.AppendLine();
        o.AppendLine(CultureInfo.InvariantCulture, $"{title,-28}{"ms",10}{"share",9}");
        foreach ((string op, JsonNode? v) in breakdown.OrderByDescending(kv => kv.Value!.GetValue<double>()))
        {
            double ms = v!.GetValue<double>();
            o.AppendLine(CultureInfo.InvariantCulture, $"{op,-28}{ms,10:F3}{(total > 0 ? ms / total : 0),9:P1}");
        }

        o.AppendLine(CultureInfo.InvariantCulture, $"{"total",-28}{total,10:F3}");
    }

    private static JsonObject? RunChild(Settings s, out string error)
    {
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string self = Environment.ProcessPath ?? "halo";
        start.FileName = self;
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        }

        foreach (string a in (string[])["bench", "--repetition", "--model", s.Model!, "--threads", s.Threads.ToString(CultureInfo.InvariantCulture),
                     "--backend", s.Backend, "--pp", s.Pp.ToString(CultureInfo.InvariantCulture), "--tg", s.Tg.ToString(CultureInfo.InvariantCulture)])
        {
            start.ArgumentList.Add(a);
        }

        if (s.Compat is not null)
        {
            start.ArgumentList.Add("--compat");
            start.ArgumentList.Add(s.Compat);
        }

        if (s.Act is not null)
        {
            start.ArgumentList.Add("--act");
            start.ArgumentList.Add(s.Act);
        }

        if (s.LmHead is not null)
        {
            start.ArgumentList.Add("--lm-head");
            start.ArgumentList.Add(s.LmHead);
        }

        if (s.Breakdown)
        {
            start.ArgumentList.Add("--breakdown");
        }

        if (s.Parallel > 0)
        {
            start.ArgumentList.Add("--parallel");
            start.ArgumentList.Add(s.Parallel.ToString(CultureInfo.InvariantCulture));
        }

        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        error = stderr.Result;
        if (process.ExitCode != 0)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(stdout)!.AsObject();
        }
        catch (JsonException e)
        {
            error = $"halo bench: a repetition printed no result ({e.Message})\n{error}";
            return null;
        }
    }

    /// <summary>One repetition in this process: load, prefill of pp tokens, tg steps after it, tg steps from an
    /// empty cache, then (--parallel) one and N concurrent streams through the scheduler.</summary>
    private static int RunRepetition(Settings s, BackendOptions options)
    {
        TimeSpan sinceProcessStart = DateTime.Now - Process.GetCurrentProcess().StartTime;
        int context = Math.Max(s.Pp + s.Tg, s.Parallel > 0 ? ParallelBench.PromptTokens + s.Tg : 0);
        options = options with { ContextLength = context, MaxSlots = Math.Max(1, s.Parallel), LoadTimings = new LoadTimings() };
        using LoadedModel? model = EngineOptions.TryLoad("bench", s.Model!, options);
        if (model is null)
        {
            return Cli.Failure;
        }

        IBackend backend = model.Backend;
        if (context > model.Source.Config.ContextLength)
        {
            Console.Error.WriteLine($"halo bench: --pp + --tg ({context}) exceeds the model's context length {model.Source.Config.ContextLength}");
            return Cli.UsageError;
        }

        int vocab = backend.Config.VocabSize;
        var prompt = new int[s.Pp];
        var rng = new Random(1234);
        for (int i = 0; i < prompt.Length; i++)
        {
            prompt[i] = rng.Next(vocab);
        }

        var logits = new float[vocab];
        var chunk = new SequenceChunk[1];
        var step = new int[1];

        OpProfile? prefillProfile = s.Breakdown && backend is CpuBackend ? new OpProfile() : null;
        OpProfile? profile = s.Breakdown && backend is CpuBackend ? new OpProfile() : null;
        if (backend is CpuBackend cpu)
        {
            cpu.Profile = prefillProfile;
        }

        long t0 = Stopwatch.GetTimestamp();
        TimeSpan cpu0 = Environment.CpuUsage.TotalTime;
        chunk[0] = new SequenceChunk(0, 0, prompt);
        backend.Forward(chunk, logits);
        double ppSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        TimeSpan ppCpu = Environment.CpuUsage.TotalTime - cpu0;

        if (backend is CpuBackend cpu1)
        {
            cpu1.Profile = profile;
        }

        double tgSeconds = Decode(backend, chunk, step, logits, s.Pp, s.Tg, profile);
        if (backend is CpuBackend cpu2)
        {
            cpu2.Profile = null;
        }

        double tgD0Seconds = Decode(backend, chunk, step, logits, 0, s.Tg, null);

        var result = new JsonObject
        {
            ["backend"] = backend.Info.Name,
            ["device"] = backend.Info.Device,
            ["pp_tps"] = s.Pp / ppSeconds,
            ["tg_tps"] = s.Tg / tgSeconds,
            ["tg_d0_tps"] = s.Tg / tgD0Seconds,
            ["load_ms"] = model.LoadTime.TotalMilliseconds,
            ["peak_rss_mib"] = PeakRssMib(),
        };
        if (s.Breakdown)
        {
            result["breakdown"] = Breakdown(profile, tgSeconds, s.Tg);
            result["prefill_breakdown"] = Breakdown(prefillProfile, ppSeconds, s.Pp);
            (result["load_breakdown"], result["load_breakdown_cpu"]) = LoadBreakdown(model, sinceProcessStart, ppSeconds, ppCpu);
        }

        if (s.Parallel > 0)
        {
            ParallelBench.Measure(backend, s.Parallel, s.Tg, result, s.Breakdown ? new OpProfile() : null);
        }

        Console.Out.WriteLine(result.ToJsonString());
        return Cli.Ok;
    }

    /// <summary>
    /// Process start to the repetition's code (runtime start, JIT, flag parsing), each load phase, what load time
    /// the phases leave unaccounted, and the first forward step (the prompt) that yields the first token; wall
    /// milliseconds, and beside them the process CPU milliseconds of each phase.
    /// </summary>
    private static (JsonObject Wall, JsonObject Cpu) LoadBreakdown(LoadedModel model, TimeSpan sinceProcessStart, double ppSeconds, TimeSpan ppCpu)
    {
        var wall = new JsonObject { ["process_start"] = sinceProcessStart.TotalMilliseconds };
        var cpu = new JsonObject();
        double accounted = 0;
        foreach ((string phase, double ms, double cpuMs) in model.Timings.Phases)
        {
            wall[phase] = ms;
            cpu[phase] = cpuMs;
            accounted += phase.EndsWith("_parallel", StringComparison.Ordinal) ? 0 : ms; // ran beside other phases
        }

        wall["load_other"] = Math.Max(0, model.LoadTime.TotalMilliseconds - accounted);
        wall["first_forward"] = ppSeconds * 1000;
        cpu["first_forward"] = ppCpu.TotalMilliseconds;
        return (wall, cpu);
    }

    /// <summary>Milliseconds per token in each op, and the unaccounted rest as overhead.</summary>
    private static JsonObject Breakdown(OpProfile? profile, double seconds, int tokens)
    {
        var b = new JsonObject();
        double accounted = 0;
        if (profile is not null)
        {
            foreach (Op op in Enum.GetValues<Op>())
            {
                double ms = profile.Milliseconds(op) / tokens;
                accounted += ms;
                b[Name(op)] = ms;
            }
        }

        b["overhead"] = Math.Max(0, seconds * 1000 / tokens - accounted);
        return b;
    }

    private static double Decode(IBackend backend, SequenceChunk[] chunk, int[] step, float[] logits, int start, int steps, OpProfile? profile)
    {
        step[0] = ArgMax(logits);
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < steps; i++)
        {
            chunk[0] = new SequenceChunk(0, start + i, step);
            backend.Forward(chunk, logits);
            long s0 = Stopwatch.GetTimestamp();
            step[0] = ArgMax(logits);
            profile?.Add(Op.Sampling, Stopwatch.GetTimestamp() - s0);
        }

        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    private static int ArgMax(float[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++)
        {
            if (v[i] > v[best])
            {
                best = i;
            }
        }

        return best;
    }

    internal static string Name(Op op) => op switch
    {
        Op.Embedding => "embedding",
        Op.NormQuantize => "norm_quantize",
        Op.MatMulQkv => "matmul_qkv",
        Op.Rope => "rope_kv_store",
        Op.Attention => "attention",
        Op.MatMulOutput => "matmul_attn_output",
        Op.MatMulGateUp => "matmul_gate_up",
        Op.MatMulDown => "matmul_down",
        Op.Residual => "residual",
        Op.LmHead => "lm_head",
        Op.Sampling => "sampling",
        _ => "overhead",
    };

    /// <summary>Peak resident memory of this process (VmHWM), in MiB.</summary>
    private static double PeakRssMib()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            {
                string kb = line["VmHWM:".Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) / 1024.0;
            }
        }

        return 0;
    }
}
