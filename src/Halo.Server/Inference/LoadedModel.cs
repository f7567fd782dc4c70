using Halo.Core.Configuration;
using Halo.Engine.Backends;
using Halo.Engine.Sampling;
using Halo.Engine.Scheduling;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Inference;

/// <summary>A model ready to serve: the backend holding its weights and KV cache, its tokenizer, and how to
/// make a sampler for a request.</summary>
internal sealed class LoadedModel : IDisposable
{
    public required string Id { get; init; }

    public required string Path { get; init; }

    public required IBackend Backend { get; init; }

    public required IServedTokenizer Tokenizer { get; init; }

    public required Func<SamplingParams, ITokenSampler> Samplers { get; init; }

    /// <summary>Synthetic model with random weights (the demo): said loudly in the log.</summary>
    public bool RandomWeights { get; init; }

    /// <summary>Whatever else must live as long as the backend (the memory-mapped file).</summary>
    public IDisposable? Owner { get; init; }

    public void Dispose()
    {
        Backend.Dispose();
        Owner?.Dispose();
    }
}

/// <summary>Opens the configured model and builds its backend; <paramref name="progress"/> receives status lines.</summary>
internal interface IModelLoader
{
    LoadedModel Load(HaloOptions options, Action<string> progress, ILogger logger, CancellationToken cancellationToken);
}

/// <summary>Where the daemon is in its life, as <c>/health</c> reports it.</summary>
internal enum ServingState
{
    Loading,
    Ready,
    Draining,
}

/// <summary>The model being served and the serving loop over it; the one object endpoints ask.</summary>
internal sealed class ModelRuntime
{
    private volatile ServingState _state = ServingState.Loading;

    public ServingState State => _state;

    public LoadedModel? Model { get; private set; }

    public BatchScheduler? Scheduler { get; private set; }

    public double LoadSeconds { get; private set; }

    public string LoadingStatus { get; set; } = "starting";

    public void SetLoaded(LoadedModel model, BatchScheduler scheduler, double loadSeconds)
    {
        Model = model;
        Scheduler = scheduler;
        LoadSeconds = loadSeconds;
    }

    public void SetReady() => _state = ServingState.Ready;

    public void SetDraining() => _state = ServingState.Draining;
}
