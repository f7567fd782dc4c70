using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Halo.Engine.Scheduling;
using Halo.Server.Inference;
using Halo.Server.OpenAi;
using Prometheus;

namespace Halo.Server.Mcp;

/// <summary>
/// The appliance inside the daemon: requests are validated by the OpenAI endpoints' own readers and run through
/// <see cref="ServingContext.Submit"/> and <see cref="GenerationPump"/>, exactly as <c>/v1/completions</c> and
/// <c>/v1/chat/completions</c> run them (same scheduler, metrics, stop strings, slot release on cancel).
/// </summary>
internal sealed class DaemonAppliance(ServingContext serving, DoctorRunner doctor) : IApplianceApi
{
    public async Task<GenerationOutcome> GenerateAsync(JsonObject request, bool chat, Func<int, ValueTask> onToken, CancellationToken cancellationToken)
    {
        LoadedModel model;
        int[] prompt;
        GenerationParameters p;
        GenerationStream generation;
        try
        {
            model = serving.RequireReady();
            using JsonDocument document = RequestJson.ParseBody(JsonSerializer.SerializeToUtf8Bytes(request));
            RequestJson json = RequestJson.Root(document);
            if (chat)
            {
                ChatCompletionRequest chatRequest = ChatCompletionRequest.Read(json);
                p = chatRequest.Parameters;
                prompt = chatRequest.EncodePrompt(model.Tokenizer);
            }
            else
            {
                CompletionRequest completion = CompletionRequest.Read(json, model.Tokenizer.VocabSize);
                p = completion.Parameters;
                prompt = completion.PromptTokens ?? model.Tokenizer.Encode(completion.PromptText!, addBos: true);
                if (prompt.Length == 0)
                {
                    throw new InvalidRequestException("$.prompt: encodes to no tokens", "prompt");
                }
            }

            ServingContext.CheckModel(model, p.Model);
            generation = serving.Submit(model, prompt, p);
        }
        catch (ApiException e)
        {
            throw new ApplianceException(e.Message);
        }

        var text = new StringBuilder();
        int generated = 0;
        (FinishReason finish, int completionTokens) = await GenerationPump.RunAsync(generation, model.Tokenizer, p.Stop, serving.Metrics, async piece =>
        {
            text.Append(piece.Text);
            if (piece.Token is not null)
            {
                await onToken(++generated).ConfigureAwait(false);
            }
        }, cancellationToken).ConfigureAwait(false);

        return new GenerationOutcome(model.Id, text.ToString(), GenerationPump.FinishText(finish), prompt.Length, completionTokens);
    }

    public Task<JsonObject> TokenizeAsync(JsonObject request, CancellationToken cancellationToken)
    {
        try
        {
            LoadedModel model = serving.RequireReady();
            using JsonDocument document = RequestJson.ParseBody(JsonSerializer.SerializeToUtf8Bytes(request));
            RequestJson json = RequestJson.Root(document);
            int[] tokens = json.Has("messages")
                ? ChatCompletionRequest.Read(json).EncodePrompt(model.Tokenizer)
                : model.Tokenizer.Encode(json.String("content") ?? throw json.Missing("content", "a string"), json.Bool("add_special") ?? true);
            var ids = new JsonArray();
            foreach (int t in tokens)
            {
                ids.Add(t);
            }

            return Task.FromResult(new JsonObject
            {
                ["tokens"] = ids,
                ["count"] = tokens.Length,
                ["max_model_len"] = serving.Runtime.Scheduler!.ContextLength,
            });
        }
        catch (ApiException e)
        {
            throw new ApplianceException(e.Message);
        }
    }

    public Task<JsonObject> ModelsAsync(CancellationToken cancellationToken)
    {
        LoadedModel model = Ready();
        return Task.FromResult(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject
            {
                ["id"] = model.Id,
                ["object"] = "model",
                ["created"] = new DateTimeOffset(File.GetLastWriteTimeUtc(model.Path)).ToUnixTimeSeconds(),
                ["owned_by"] = "halo",
                ["context_length"] = serving.Runtime.Scheduler!.ContextLength,
                ["backend"] = model.Backend.Info.Name,
                ["random_weights"] = model.RandomWeights,
            }),
        });
    }

    public async Task<string> MetricsTextAsync(CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await serving.Metrics.Registry.CollectAndExportAsTextAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    public Task<JsonObject> DoctorAsync(CancellationToken cancellationToken) => doctor.RunAsync(cancellationToken);

    public Task<JsonObject> ModelInfoAsync(CancellationToken cancellationToken)
    {
        LoadedModel model = Ready();
        Halo.Core.Models.ModelConfig config = model.Backend.Config;
        BatchScheduler scheduler = serving.Runtime.Scheduler!;
        return Task.FromResult(new JsonObject
        {
            ["id"] = model.Id,
            ["path"] = model.Path,
            ["backend"] = model.Backend.Info.Name,
            ["device"] = model.Backend.Info.Device,
            ["random_weights"] = model.RandomWeights,
            ["load_seconds"] = Math.Round(serving.Runtime.LoadSeconds, 3),
            ["slots"] = scheduler.SlotCount,
            ["context_length"] = scheduler.ContextLength,
            ["architecture"] = config.Architecture,
            ["name"] = config.Name,
            ["hidden_size"] = config.HiddenSize,
            ["feed_forward_size"] = config.FeedForwardSize,
            ["layers"] = config.LayerCount,
            ["heads"] = config.HeadCount,
            ["kv_heads"] = config.KvHeadCount,
            ["head_dim"] = config.HeadDim,
            ["vocab_size"] = config.VocabSize,
            ["model_context_length"] = config.ContextLength,
            ["rope_theta"] = config.RopeTheta,
            ["rms_norm_eps"] = config.RmsNormEps,
            ["activation"] = config.Activation.ToString().ToLowerInvariant(),
            ["tied_embeddings"] = config.TiedEmbeddings,
        });
    }

    public Task<JsonObject> ConfigAsync(CancellationToken cancellationToken) => Task.FromResult(ConfigJson.From(serving.Options));

    private LoadedModel Ready()
    {
        try
        {
            return serving.RequireReady();
        }
        catch (ApiException e)
        {
            throw new ApplianceException(e.Message);
        }
    }
}
