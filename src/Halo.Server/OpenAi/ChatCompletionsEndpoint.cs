using System.Text;
using System.Text.Json;
using Halo.Engine.Scheduling;
using Halo.Server.Inference;
using Microsoft.AspNetCore.Http;

namespace Halo.Server.OpenAi;

/// <summary><c>POST /v1/chat/completions</c>: messages through the model's chat template, answered whole or
/// streamed as <c>chat.completion.chunk</c> events.</summary>
internal static class ChatCompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext context, ServingContext serving)
    {
        LoadedModel model = serving.RequireReady();
        ReadOnlyMemory<byte> body = await RequestBody.ReadAsync(context, serving.Options.Server.MaxBodyBytes);
        ChatCompletionRequest request;
        using (JsonDocument document = RequestJson.ParseBody(body))
        {
            request = ChatCompletionRequest.Read(RequestJson.Root(document));
        }

        GenerationParameters p = request.Parameters;
        ServingContext.CheckModel(model, p.Model);
        int[] prompt = request.EncodePrompt(model.Tokenizer);
        GenerationStream generation = serving.Submit(model, prompt, p);
        string id = ResponseJson.NewId("chatcmpl-");
        long created = ResponseJson.Now();
        if (p.Stream)
        {
            await StreamAsync(context, serving, model, generation, p, id, created);
        }
        else
        {
            await AnswerAsync(context, serving, model, generation, p, id, created);
        }
    }

    private static async Task AnswerAsync(HttpContext context, ServingContext serving, LoadedModel model, GenerationStream generation, GenerationParameters p, string id, long created)
    {
        var text = new StringBuilder();
        var logprobs = new List<GeneratedToken>();
        (FinishReason finish, int completion) = await GenerationPump.RunAsync(generation, model.Tokenizer, p.Stop, serving.Metrics, piece =>
        {
            text.Append(piece.Text);
            if (p.TopLogprobs >= 0 && piece.Token is { } token)
            {
                logprobs.Add(token);
            }

            return ValueTask.CompletedTask;
        }, context.RequestAborted);

        await ResponseJson.WriteAsync(context, 200, json =>
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("object", "chat.completion");
            json.WriteNumber("created", created);
            json.WriteString("model", model.Id);
            json.WriteNull("system_fingerprint");
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            json.WriteString("content", text.ToString());
            json.WriteEndObject();
            if (p.TopLogprobs >= 0)
            {
                json.WriteStartObject("logprobs");
                json.WriteStartArray("content");
                foreach (GeneratedToken token in logprobs)
                {
                    WriteLogprob(json, model.Tokenizer, token);
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull("logprobs");
            }

            json.WriteString("finish_reason", GenerationPump.FinishText(finish));
            json.WriteEndObject();
            json.WriteEndArray();
            ResponseJson.WriteUsage(json, generation.PromptTokenCount, completion);
            json.WriteEndObject();
        });
    }

    private static async Task StreamAsync(HttpContext context, ServingContext serving, LoadedModel model, GenerationStream generation, GenerationParameters p, string id, long created)
    {
        var sse = new SseWriter(context);

        void Head(Utf8JsonWriter json)
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("object", "chat.completion.chunk");
            json.WriteNumber("created", created);
            json.WriteString("model", model.Id);
            json.WriteNull("system_fingerprint");
        }

        void Tail(Utf8JsonWriter json)
        {
            if (p.IncludeUsage)
            {
                json.WriteNull("usage");
            }

            json.WriteEndObject();
        }

        try
        {
            await sse.WriteAsync(json =>
            {
                Head(json);
                json.WriteStartArray("choices");
                json.WriteStartObject();
                json.WriteNumber("index", 0);
                json.WriteStartObject("delta");
                json.WriteString("role", "assistant");
                json.WriteString("content", "");
                json.WriteEndObject();
                json.WriteNull("logprobs");
                json.WriteNull("finish_reason");
                json.WriteEndObject();
                json.WriteEndArray();
                Tail(json);
            });

            (FinishReason finish, int completion) = await GenerationPump.RunAsync(generation, model.Tokenizer, p.Stop, serving.Metrics, piece =>
            {
                bool withLogprobs = p.TopLogprobs >= 0 && piece.Token is not null;
                if (piece.Text.Length == 0 && !withLogprobs)
                {
                    return ValueTask.CompletedTask;
                }

                return sse.WriteAsync(json =>
                {
                    Head(json);
                    json.WriteStartArray("choices");
                    json.WriteStartObject();
                    json.WriteNumber("index", 0);
                    json.WriteStartObject("delta");
                    json.WriteString("content", piece.Text);
                    json.WriteEndObject();
                    if (withLogprobs)
                    {
                        json.WriteStartObject("logprobs");
                        json.WriteStartArray("content");
                        WriteLogprob(json, model.Tokenizer, piece.Token!.Value);
                        json.WriteEndArray();
                        json.WriteEndObject();
                    }
                    else
                    {
                        json.WriteNull("logprobs");
                    }

                    json.WriteNull("finish_reason");
                    json.WriteEndObject();
                    json.WriteEndArray();
                    Tail(json);
                });
            }, context.RequestAborted);

            await sse.WriteAsync(json =>
            {
                Head(json);
                json.WriteStartArray("choices");
                json.WriteStartObject();
                json.WriteNumber("index", 0);
                json.WriteStartObject("delta");
                json.WriteEndObject();
                json.WriteNull("logprobs");
                json.WriteString("finish_reason", GenerationPump.FinishText(finish));
                json.WriteEndObject();
                json.WriteEndArray();
                Tail(json);
            });

            if (p.IncludeUsage)
            {
                await sse.WriteAsync(json =>
                {
                    Head(json);
                    json.WriteStartArray("choices");
                    json.WriteEndArray();
                    ResponseJson.WriteUsage(json, generation.PromptTokenCount, completion);
                    json.WriteEndObject();
                });
            }

            await sse.DoneAsync();
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away mid-stream; GenerationPump already freed the slot.
        }
    }

    /// <summary>One entry of <c>logprobs.content</c>: token, logprob, bytes, top_logprobs.</summary>
    private static void WriteLogprob(Utf8JsonWriter json, IServedTokenizer tokenizer, GeneratedToken token)
    {
        json.WriteStartObject();
        WriteCandidate(json, tokenizer, token.TokenId, token.Logprob);
        json.WriteStartArray("top_logprobs");
        if (token.Top is { } top)
        {
            foreach (TokenLogprob candidate in top)
            {
                json.WriteStartObject();
                WriteCandidate(json, tokenizer, candidate.TokenId, candidate.Logprob);
                json.WriteEndObject();
            }
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteCandidate(Utf8JsonWriter json, IServedTokenizer tokenizer, int tokenId, float logprob)
    {
        ReadOnlySpan<byte> bytes = tokenizer.TokenBytes(tokenId);
        json.WriteString("token", ResponseJson.TokenText(bytes));
        json.WriteNumber("logprob", logprob);
        ResponseJson.WriteBytes(json, bytes);
    }
}
