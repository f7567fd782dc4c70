using System.CommandLine;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Engine.Backends;
using Halo.Engine.Models;
using Halo.Engine.Weights;
using Halo.Kernels;

namespace Halo.Installer.Run;

/// <summary>The flags `halo run` and `halo bench` share (model, threads, backend, numerics) and how they load a model.</summary>
internal sealed class EngineOptions
{
    public Option<string> Model { get; } = new("--model") { Description = "Model file (GGUF, .h1b) or safetensors directory", Required = true };

    public Option<int> Threads { get; } = new("--threads") { Description = "CPU threads (default: all cores)", DefaultValueFactory = _ => Environment.ProcessorCount };

    public Option<string> Backend { get; } = new("--backend") { Description = "auto (GPU when present, else CPU), cpu or gpu", DefaultValueFactory = _ => "auto" };

    public Option<string?> Compat { get; } = new("--compat") { Description = "llamacpp: follow llama.cpp's CPU numerics exactly (int8 per 256-block, F16 KV cache and LM-head input)" };

    public Option<string?> Act { get; } = new("--act") { Description = "Override the feed-forward activation: silu or relu2" };

    public Option<string?> LmHead { get; } = new("--lm-head") { Description = "CPU backend LM head storage: source (exact), int8 (half of F16's bytes), int6 (default: 0.39 of F16's bytes, closer to exact than int8) or int4 (0.27 of F16's bytes)" };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(Threads);
        command.Options.Add(Backend);
        command.Options.Add(Compat);
        command.Options.Add(Act);
        command.Options.Add(LmHead);
        Threads.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1)
            {
                r.AddError("--threads must be at least 1");
            }
        });
        Backend.AcceptOnlyFromAmong("auto", "cpu", "gpu");
        Compat.AcceptOnlyFromAmong("llamacpp");
        Act.AcceptOnlyFromAmong("silu", "relu2");
        LmHead.AcceptOnlyFromAmong(LmHeadPrecisions.Names);
    }

    public BackendOptions BackendOptions(ParseResult parse) => new()
    {
        Kind = parse.GetValue(Backend) switch
        {
            "cpu" => BackendKind.Cpu,
            "gpu" => BackendKind.Gpu,
            _ => BackendKind.Auto,
        },
        Threads = parse.GetValue(Threads),
        Numerics = parse.GetValue(Compat) == "llamacpp" ? NumericsMode.LlamaCpp : NumericsMode.Halo,
        ActivationOverride = parse.GetValue(Act) switch
        {
            "silu" => Activation.Silu,
            "relu2" => Activation.Relu2,
            _ => null,
        },
        LmHead = LmHeadPrecisions.Parse(parse.GetValue(LmHead)),
        RepackCache = RepackCache.DefaultDirectory(Environment.GetEnvironmentVariable("HALO_MODEL_REPACK_CACHE")) is { } cacheDir
            ? new RepackCache(cacheDir, warning => Console.Error.WriteLine("halo: " + warning))
            : null,
    };

    /// <summary>Loads the model, or prints one clear line and returns null (exit 1).</summary>
    public static LoadedModel? TryLoad(string command, string path, BackendOptions options)
    {
        try
        {
            return LoadedModel.Load(path, options, (source, o) => BackendSelector.Create(source, o));
        }
        catch (InvalidModelException e)
        {
            Console.Error.WriteLine($"halo {command}: cannot load model: {e.Message}");
        }
        catch (GpuUnavailableException e)
        {
            Console.Error.WriteLine($"halo {command}: no GPU backend: {e.Message}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or OutOfMemoryException)
        {
            Console.Error.WriteLine($"halo {command}: cannot load model {path}: {e.Message}");
        }

        return null;
    }
}
