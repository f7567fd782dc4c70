using System.Diagnostics;
using Halo.Core.Chat;
using Halo.Core.Configuration;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Core.Tokenization;
using Halo.Engine.Backends;
using Halo.Engine.Profiling;
using Halo.Engine.Sampling;
using Halo.Engine.Scheduling;
using Halo.Engine.Weights;
using Halo.Kernels;
using Halo.Server.Hosting;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Inference;

/// <summary>Opens the configured model file (memory-mapped), builds its tokenizer, chat template and backend.</summary>
internal sealed class EngineModelLoader : IModelLoader
{
    private static readonly string[] ModelExtensions = [".gguf", ".h1b"];

    public LoadedModel Load(HaloOptions options, Action<string> progress, ILogger logger, CancellationToken cancellationToken)
    {
        string path = ResolvePath(options.Model);
        progress("opening " + path);
        var timings = new LoadTimings();
        long start = Stopwatch.GetTimestamp();
        IModelSource source = ModelFile.Open(path);
        timings.Lap("open", start);
        if (source.Tokenizer is not { } vocabulary)
        {
            source.Dispose();
            throw new InvalidModelException(path, "the model carries no tokenizer (tokenizer.ggml.* metadata)");
        }

        // The tokenizer and chat template are built on their own thread while the weights load.
        Task<(BpeTokenizer, ChatTemplate)> tokenizing = Task.Factory.StartNew(
            () => (new BpeTokenizer(vocabulary), ChatTemplate.FromModel(vocabulary)),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        IBackend? backend = null;
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            progress("loading weights of " + path);
            var backendOptions = new BackendOptions
            {
                Kind = options.Model.Backend switch { "cpu" => BackendKind.Cpu, "gpu" => BackendKind.Gpu, _ => BackendKind.Auto },
                Threads = options.Model.Threads > 0 ? options.Model.Threads : Environment.ProcessorCount,
                MaxSlots = options.Scheduler.Slots,
                ContextLength = options.Model.ContextLength,
                ActivationOverride = options.Model.Activation switch { "silu" => Activation.Silu, "relu2" => Activation.Relu2, _ => null },
                LmHead = LmHeadPrecisions.Parse(options.Model.LmHead),
                MaxBatchTokens = options.Scheduler.PrefillChunkTokens + options.Scheduler.Slots,
                LoadTimings = timings,
                RepackCache = RepackCache.DefaultDirectory(options.Model.RepackCache) is { } cacheDir
                    ? new RepackCache(cacheDir, warning => Log.RepackCacheWarning(logger, warning))
                    : null,
            };
            backend = BackendSelector.Create(source, backendOptions, logger);
            long wait = Stopwatch.GetTimestamp();
            (BpeTokenizer tokenizer, ChatTemplate template) = tokenizing.GetAwaiter().GetResult();
            timings.Lap("tokenizer_wait", wait);
            Log.LoadPhases(logger, timings.ToString());
            int vocab = backend.Config.VocabSize;
            return new LoadedModel
            {
                Id = options.Model.Name.Length > 0 ? options.Model.Name : ModelId(path),
                Path = path,
                Backend = backend,
                Tokenizer = new BpeServedTokenizer(tokenizer, template),
                Samplers = parameters => new SequenceSampler(new Sampler(vocab, parameters)),
                RandomWeights = source.Config.RandomWeights,
                Owner = source,
            };
        }
        catch
        {
            backend?.Dispose();
            ((IAsyncResult)tokenizing).AsyncWaitHandle.WaitOne(); // it reads the mapped file
            source.Dispose();
            throw;
        }
    }

    /// <summary>
    /// model.path as given (file or directory); a bare name under model.models_dir
    /// (<c>/var/lib/halo/models/NAME/</c> holding one model file); or, when empty, the only model there.
    /// </summary>
    internal static string ResolvePath(ModelOptions model)
    {
        string path = model.Path;
        if (path.Length == 0)
        {
            string[] candidates = Directory.Exists(model.ModelsDir) ? Directory.GetFileSystemEntries(model.ModelsDir) : [];
            if (candidates.Length != 1)
            {
                throw new InvalidOperationException(candidates.Length == 0
                    ? $"model.path is not set and {model.ModelsDir} holds no model (halo models pull NAME, or --model PATH, or --demo)"
                    : $"model.path is not set and {model.ModelsDir} holds {candidates.Length} models; choose one with model.path or --model");
            }

            path = candidates[0];
        }
        else if (!File.Exists(path) && !Directory.Exists(path) && !Path.IsPathRooted(path))
        {
            path = Path.Combine(model.ModelsDir, path);
        }

        if (Directory.Exists(path) && !File.Exists(Path.Combine(path, "config.json")))
        {
            var files = new List<string>();
            foreach (string file in Directory.GetFiles(path))
            {
                if (Array.IndexOf(ModelExtensions, Path.GetExtension(file).ToLowerInvariant()) >= 0)
                {
                    files.Add(file);
                }
            }

            if (files.Count == 1)
            {
                return files[0];
            }
        }

        return path;
    }

    private static string ModelId(string path)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(path));
        string extension = Path.GetExtension(name);
        return Array.IndexOf(ModelExtensions, extension.ToLowerInvariant()) >= 0 ? name[..^extension.Length] : name;
    }
}
