using Halo.Core.Configuration;
using Halo.Engine.Backends;
using Halo.Server.Inference;

namespace Halo.Server.Tests.Infrastructure;

/// <summary>The real loader, held at a gate so a test can look at the server while the model is "loading".</summary>
internal sealed class GatedLoader(ManualResetEventSlim gate) : IModelLoader
{
    public LoadedModel Load(HaloOptions options, Action<string> progress, Microsoft.Extensions.Logging.ILogger logger, CancellationToken cancellationToken)
    {
        gate.Wait(cancellationToken);
        return new EngineModelLoader().Load(options, progress, logger, cancellationToken);
    }
}

/// <summary>The real CPU backend behind a gate: closing it makes the next forward pass hang, as a wedged GPU
/// kernel or a deadlock in the engine would.</summary>
internal sealed class GatedBackend(IBackend inner) : IBackend
{
    public ManualResetEventSlim Gate { get; } = new(true);

    /// <summary>Set when a forward pass has started (and is perhaps waiting at the gate).</summary>
    public ManualResetEventSlim Entered { get; } = new(false);

    public BackendInfo Info => inner.Info;

    public Halo.Core.Models.ModelConfig Config => inner.Config;

    public int MaxSlots => inner.MaxSlots;

    public int ContextLength => inner.ContextLength;

    public void Forward(ReadOnlySpan<SequenceChunk> chunks, Span<float> logits)
    {
        Entered.Set();
        Gate.Wait();
        inner.Forward(chunks, logits);
    }

    public void Dispose()
    {
        Gate.Dispose();
        Entered.Dispose();
    }
}
