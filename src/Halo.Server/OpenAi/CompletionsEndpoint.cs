using System.Text;
using System.Text.Json;
using Halo.Engine.Scheduling;
using Halo.Server.Inference;
using Microsoft.AspNetCore.Http;

namespace Halo.Server.OpenAi;

/// <summary><c>POST /v1/completions</c>: a raw prompt (text, BOS added, or token ids as given), answered whole
/// or streamed as <c>text_completion</c> events, with the legacy logprobs shape.</summary>
internal static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext context, ServingContext serving)
    {
        LoadedModel model = serving.RequireReady();
        ReadOnlyMemory<byte> body = await RequestBody.ReadAsync(context, serving.Options.Server.MaxBodyBytes);
        CompletionRequest request;
        using (JsonDocument document = RequestJson.ParseBody(body))
        {
            request = CompletionRequest.Read(RequestJson.Root(document), model.Tokenizer.VocabSize);
        }

        GenerationParameters p = request.Parameters;
        ServingContext.CheckModel(model, p.Model);
        int[] prompt = request.PromptTokens ?? model.Tokenizer.Encode(request.PromptText!, addBos: true);
        if (prompt.Length == 0)
        {
            throw new InvalidRequestException("$.prompt: encodes to no tokens", "prompt");
        }

        GenerationStream generation = serving.Submit(model, prompt, p);
        string id = ResponseJson.NewId("cmpl-");
        long created = ResponseJson.Now();
        string echo = request.Echo ? request.PromptText ?? TokenTextStream.Decode(model.Tokenizer, prompt) : "";

        void Head(Utf8JsonWriter json)
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("object", "text_completion");
            json.WriteNumber("created", created);
            json.WriteString("model", model.Id);
            json.WriteNull("system_fingerprint");
        }

        if (p.Stream)
        {
            var sse = new SseWriter(context);
            try
            {
                int offset = 0;
                if (echo.Length > 0)
                {
                    await sse.WriteAsync(json => WriteChoiceChunk(json, Head, p, echo, [], null, ref offset, model.Tokenizer));
                }

                (FinishReason finish, int completion) = await GenerationPump.RunAsync(generation, model.Tokenizer, p.Stop, serving.Metrics, piece =>
                {
                    if (piece.Text.Length == 0 && !(p.TopLogprobs >= 0 && piece.Token is not null))
                    {
                        return ValueTask.CompletedTask;
                    }

                    GeneratedToken[] tokens = piece.Token is { } t ? [t] : [];
                    return sse.WriteAsync(json => WriteChoiceChunk(json, Head, p, piece.Text, tokens, null, ref offset, model.Tokenizer));
                }, context.RequestAborted);

                await sse.WriteAsync(json => WriteChoiceChunk(json, Head, p, "", [], GenerationPump.FinishText(finish), ref offset, model.Tokenizer));
                if (p.IncludeUsage)
                {
                    await sse.WriteAsync(json =>
                    {
                        Head(json);
                        json.WriteStartArray("choices");
                        json.WriteEndArray();
                        ResponseJson.WriteUsage(json, prompt.Length, completion);
                        json.WriteEndObject();
                    });
                }

                await sse.DoneAsync();
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // Client gone; the slot is already freed.
            }

            return;
        }

        var text = new StringBuilder(echo);
        var tokensOut = new List<GeneratedToken>();
        (FinishReason end, int count) = await GenerationPump.RunAsync(generation, model.Tokenizer, p.Stop, serving.Metrics, piece =>
        {
            text.Append(piece.Text);
            if (piece.Token is { } token)
            {
                tokensOut.Add(token);
            }

            return ValueTask.CompletedTask;
        }, context.RequestAborted);

        await ResponseJson.WriteAsync(context, 200, json =>
        {
            int offset = echo.Length;
            Head(json);
            json.WriteStartArray("choices");
            WriteChoice(json, p, text.ToString(), [.. tokensOut], GenerationPump.FinishText(end), ref offset, model.Tokenizer);
            json.WriteEndArray();
            ResponseJson.WriteUsage(json, prompt.Length, count);
            json.WriteEndObject();
        });
    }

    private static void WriteChoiceChunk(Utf8JsonWriter json, Action<Utf8JsonWriter> head, GenerationParameters p, string text, GeneratedToken[] tokens, string? finish, ref int offset, IServedTokenizer tokenizer)
    {
        head(json);
        json.WriteStartArray("choices");
        WriteChoice(json, p, text, tokens, finish, ref offset, tokenizer);
        json.WriteEndArray();
        if (p.IncludeUsage)
        {
            json.WriteNull("usage");
        }

        json.WriteEndObject();
    }

    /// <summary>A choice with the legacy logprobs object (tokens, token_logprobs, top_logprobs, text_offset).</summary>
    private static void WriteChoice(Utf8JsonWriter json, GenerationParameters p, string text, GeneratedToken[] tokens, string? finish, ref int offset, IServedTokenizer tokenizer)
    {
        json.WriteStartObject();
        json.WriteNumber("index", 0);
        json.WriteString("text", text);
        if (p.TopLogprobs >= 0 && tokens.Length > 0)
        {
            json.WriteStartObject("logprobs");
            json.WriteStartArray("tokens");
            foreach (GeneratedToken t in tokens)
            {
                json.WriteStringValue(ResponseJson.TokenText(tokenizer.TokenBytes(t.TokenId)));
            }

            json.WriteEndArray();
            json.WriteStartArray("token_logprobs");
            foreach (GeneratedToken t in tokens)
            {
                json.WriteNumberValue(t.Logprob);
            }

            json.WriteEndArray();
            json.WriteStartArray("top_logprobs");
            foreach (GeneratedToken t in tokens)
            {
                json.WriteStartObject();
                foreach (TokenLogprob candidate in t.Top ?? [])
                {
                    json.WriteNumber(ResponseJson.TokenText(tokenizer.TokenBytes(candidate.TokenId)), candidate.Logprob);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("text_offset");
            foreach (GeneratedToken t in tokens)
            {
                json.WriteNumberValue(offset);
                offset += ResponseJson.TokenText(tokenizer.TokenBytes(t.TokenId)).Length;
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("logprobs");
        }

        ApiErrors.WriteStringOrNull(json, "finish_reason", finish);
        json.WriteEndObject();
    }
}
