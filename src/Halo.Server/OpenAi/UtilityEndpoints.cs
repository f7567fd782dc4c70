using System.Text.Json;
using Halo.Server.Inference;
using Microsoft.AspNetCore.Http;

namespace Halo.Server.OpenAi;

/// <summary><c>/v1/models</c>, <c>/tokenize</c>, <c>/detokenize</c>, <c>/health</c>, <c>/livez</c>.</summary>
internal static class UtilityEndpoints
{
    public static Task ModelsAsync(HttpContext context, ServingContext serving)
    {
        LoadedModel model = serving.RequireReady();
        return ResponseJson.WriteAsync(context, 200, json =>
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            json.WriteStartObject();
            json.WriteString("id", model.Id);
            json.WriteString("object", "model");
            json.WriteNumber("created", new DateTimeOffset(File.GetLastWriteTimeUtc(model.Path)).ToUnixTimeSeconds());
            json.WriteString("owned_by", "halo");
            json.WriteNumber("context_length", serving.Runtime.Scheduler!.ContextLength);
            json.WriteString("backend", model.Backend.Info.Name);
            json.WriteBoolean("random_weights", model.RandomWeights);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    /// <summary>Text (<c>content</c> or <c>prompt</c>, BOS added unless <c>add_special</c> is false) or chat
    /// <c>messages</c> (through the chat template) to token ids.</summary>
    public static async Task TokenizeAsync(HttpContext context, ServingContext serving)
    {
        LoadedModel model = serving.RequireReady();
        ReadOnlyMemory<byte> body = await RequestBody.ReadAsync(context, serving.Options.Server.MaxBodyBytes);
        int[] tokens;
        using (JsonDocument document = RequestJson.ParseBody(body))
        {
            RequestJson json = RequestJson.Root(document);
            ServingContext.CheckModel(model, json.String("model"));
            if (json.Has("messages"))
            {
                tokens = ChatCompletionRequest.Read(json).EncodePrompt(model.Tokenizer);
            }
            else
            {
                string text = json.String("content") ?? json.String("prompt") ?? throw json.Missing("content", "a string (or prompt, or messages)");
                tokens = model.Tokenizer.Encode(text, json.Bool("add_special") ?? true);
            }
        }

        await ResponseJson.WriteAsync(context, 200, json =>
        {
            json.WriteStartObject();
            json.WriteStartArray("tokens");
            foreach (int t in tokens)
            {
                json.WriteNumberValue(t);
            }

            json.WriteEndArray();
            json.WriteNumber("count", tokens.Length);
            json.WriteNumber("max_model_len", serving.Runtime.Scheduler!.ContextLength);
            json.WriteEndObject();
        });
    }

    public static async Task DetokenizeAsync(HttpContext context, ServingContext serving)
    {
        LoadedModel model = serving.RequireReady();
        ReadOnlyMemory<byte> body = await RequestBody.ReadAsync(context, serving.Options.Server.MaxBodyBytes);
        int[] tokens;
        using (JsonDocument document = RequestJson.ParseBody(body))
        {
            RequestJson json = RequestJson.Root(document);
            ServingContext.CheckModel(model, json.String("model"));
            List<RequestJson> items = json.Array("tokens") ?? throw json.Missing("tokens", "an array of token ids");
            tokens = TokenIds.Read(items, model.Tokenizer.VocabSize);
        }

        string text = TokenTextStream.Decode(model.Tokenizer, tokens);
        await ResponseJson.WriteAsync(context, 200, json =>
        {
            json.WriteStartObject();
            json.WriteString("content", text);
            json.WriteEndObject();
        });
    }

    /// <summary>200 when serving; 503 while loading or draining (load balancers take the box out).</summary>
    public static Task HealthAsync(HttpContext context, ServingContext serving)
    {
        ModelRuntime runtime = serving.Runtime;
        int status = runtime.State == ServingState.Ready ? 200 : 503;
        if (status == 503)
        {
            context.Response.Headers.RetryAfter = "1";
        }

        return ResponseJson.WriteAsync(context, status, json =>
        {
            json.WriteStartObject();
            json.WriteString("status", runtime.State switch
            {
                ServingState.Ready => "ok",
                ServingState.Loading => "loading",
                _ => "draining",
            });
            if (runtime.Model is { } model)
            {
                json.WriteString("model", model.Id);
            }

            if (runtime.State == ServingState.Loading)
            {
                json.WriteString("detail", runtime.LoadingStatus);
            }

            if (runtime.Scheduler is { } scheduler)
            {
                var stats = scheduler.Stats;
                json.WriteNumber("running", stats.Running);
                json.WriteNumber("waiting", stats.Waiting);
                json.WriteNumber("slots", scheduler.SlotCount);
            }

            json.WriteEndObject();
        });
    }

    /// <summary>The process is up and answering; says nothing about the model (that is /health).</summary>
    public static Task LivezAsync(HttpContext context) =>
        ResponseJson.WriteAsync(context, 200, json =>
        {
            json.WriteStartObject();
            json.WriteString("status", "alive");
            json.WriteEndObject();
        });
}
