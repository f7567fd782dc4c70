using System.ClientModel;
using System.Text;
using System.Text.Json;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;
using OpenAI;
using OpenAI.Chat;

namespace Halo.Server.Tests.OpenAi;

/// <summary>The official OpenAI .NET client against the real server (tiny synthetic model, real engine).</summary>
public sealed class ChatCompletionsEndpointTests : IAsyncLifetime
{
    private InProcessServer _server = null!;
    private ChatClient _chat = null!;

    public async Task InitializeAsync()
    {
        _server = await InProcessServer.StartAsync();
        _chat = new ChatClient(TinyModel.Id, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_server.BaseAddress, "v1") });
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static ChatMessage[] Hello => [new SystemChatMessage("You are terse."), new UserChatMessage("Say hello.")];

    [Fact]
    public async Task CompleteChat_OpenAiClient_ReturnsTextFinishReasonAndUsage()
    {
        ChatCompletion completion = (await _chat.CompleteChatAsync(Hello, new ChatCompletionOptions { MaxOutputTokenCount = 6, Temperature = 0 })).Value;

        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(6, completion.Usage.OutputTokenCount);
        Assert.True(completion.Usage.InputTokenCount > 5);
        Assert.Equal(completion.Usage.InputTokenCount + 6, completion.Usage.TotalTokenCount);
        Assert.Equal(TinyModel.Id, completion.Model);
        Assert.StartsWith("chatcmpl-", completion.Id, StringComparison.Ordinal);
        Assert.NotNull(completion.Content[0].Text);
    }

    [Fact]
    public async Task CompleteChatStreaming_Temperature0_StreamsTheSameTextWithUsageLast()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0 };
        string whole = (await _chat.CompleteChatAsync(Hello, options)).Value.Content[0].Text;

        var streamed = new StringBuilder();
        var updates = new List<StreamingChatCompletionUpdate>();
        await foreach (StreamingChatCompletionUpdate update in _chat.CompleteChatStreamingAsync(Hello, options))
        {
            updates.Add(update);
            foreach (ChatMessageContentPart part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }
        }

        Assert.Equal(whole, streamed.ToString());
        Assert.Equal(ChatFinishReason.Length, updates.Single(u => u.FinishReason is not null).FinishReason);
        Assert.Equal(12, updates[^1].Usage.OutputTokenCount);
        Assert.True(updates.Count >= 3);
    }

    [Fact]
    public async Task CompleteChat_SameSeed_SameSampledText()
    {
#pragma warning disable OPENAI001 // Seed is marked experimental in the client
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 16, Temperature = 1.0f, TopP = 1f, Seed = 1234 };
#pragma warning restore OPENAI001

        string first = (await _chat.CompleteChatAsync(Hello, options)).Value.Content[0].Text;
        string second = (await _chat.CompleteChatAsync(Hello, options)).Value.Content[0].Text;

        Assert.Equal(first, second);
    }

    [Fact]
    public async Task CompleteChat_LogProbabilities_ReturnsChosenAndTopAlternatives()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 4, Temperature = 0, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };

        ChatCompletion completion = (await _chat.CompleteChatAsync(Hello, options)).Value;

        Assert.Equal(4, completion.ContentTokenLogProbabilities.Count);
        foreach (ChatTokenLogProbabilityDetails token in completion.ContentTokenLogProbabilities)
        {
            Assert.True(token.LogProbability <= 0);
            Assert.Equal(3, token.TopLogProbabilities.Count);
            // Greedy: the chosen token is the most likely one.
            Assert.Equal(token.TopLogProbabilities[0].LogProbability, token.LogProbability, 4);
            Assert.True(token.TopLogProbabilities[1].LogProbability <= token.TopLogProbabilities[0].LogProbability);
        }
    }

    [Fact]
    public async Task CompleteChat_StopString_EndsRightBeforeIt()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 24, Temperature = 0 };
        string text = (await _chat.CompleteChatAsync(Hello, options)).Value.Content[0].Text;
        Assert.True(text.Length >= 8, $"text '{text}' too short to cut");
        string stop = text.Substring(4, 2);
        options.StopSequences.Add(stop);

        ChatCompletion stopped = (await _chat.CompleteChatAsync(Hello, options)).Value;

        Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], stopped.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
    }

    [Fact]
    public async Task Stream_ClientDisconnects_GenerationIsCancelledAndSlotFreed()
    {
        // A 32k context and EOS ignored: the tiny model decodes ~20,000 tokens a second, so the stream must be
        // far longer than the few milliseconds this test looks at it.
        await using InProcessServer server = await InProcessServer.StartAsync(InProcessServer.DefaultOptions(o => o with
        {
            Model = o.Model with { ContextLength = 32768 },
        }));
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StringContent("""{"messages": [{"role": "user", "content": "go on forever"}], "stream": true, "temperature": 0, "ignore_eos": true}""", Encoding.UTF8, "application/json"),
        };
        using (HttpResponseMessage response = await server.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            for (int events = 0; events < 3;)
            {
                string? line = await reader.ReadLineAsync();
                events += line is not null && line.StartsWith("data: ", StringComparison.Ordinal) ? 1 : 0;
            }

            Assert.Equal(1, server.Runtime.Scheduler!.Stats.Running);
        }

        // The response is gone (connection closed); the slot must come back long before the context would fill.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (server.Runtime.Scheduler!.Stats.Running > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(0, server.Runtime.Scheduler.Stats.Running);
        Assert.True(server.Runtime.Scheduler.Stats.GenerationTokensTotal < 16000);
    }

    [Fact]
    public async Task Completions_RawHttp_ReturnsTextCompletionWithLegacyLogprobs()
    {
        using HttpResponseMessage response = await _server.Client.PostAsync("v1/completions", new StringContent(
            """{"model": "tiny", "prompt": "Once upon a time", "max_tokens": 5, "temperature": 0, "logprobs": 2}""", Encoding.UTF8, "application/json"));
        using JsonDocument json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(200, (int)response.StatusCode);
        JsonElement choice = json.RootElement.GetProperty("choices")[0];
        Assert.Equal("text_completion", json.RootElement.GetProperty("object").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(5, choice.GetProperty("logprobs").GetProperty("token_logprobs").GetArrayLength());
        Assert.Equal(2, choice.GetProperty("logprobs").GetProperty("top_logprobs")[0].EnumerateObject().Count());
        Assert.Equal(5, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Completions_StreamWithUsage_EndsWithUsageThenDone()
    {
        using HttpResponseMessage response = await _server.Client.PostAsync("v1/completions", new StringContent(
            """{"prompt": [1, 2, 3], "max_tokens": 3, "temperature": 0, "stream": true, "stream_options": {"include_usage": true}}""", Encoding.UTF8, "application/json"));
        string body = await response.Content.ReadAsStringAsync();
        string[] events = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("text/event-stream; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        Assert.Equal("data: [DONE]", events[^1]);
        using JsonDocument usage = JsonDocument.Parse(events[^2]["data: ".Length..]);
        Assert.Equal(0, usage.RootElement.GetProperty("choices").GetArrayLength());
        Assert.Equal(3, usage.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(3, usage.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }
}
