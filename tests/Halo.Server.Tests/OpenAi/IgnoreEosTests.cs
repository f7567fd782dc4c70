using System.Text;
using System.Text.Json;
using Halo.Core.Configuration;
using Halo.Server.Inference;
using Halo.Server.Tests.Infrastructure;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Tests.OpenAi;

/// <summary><c>ignore_eos</c> against the real server, with a tokenizer whose every token is an end token: without
/// it a generation stops at its first token, with it the generation runs to max_tokens.</summary>
public sealed class IgnoreEosTests : IAsyncLifetime
{
    private InProcessServer _server = null!;

    public async Task InitializeAsync() => _server = await InProcessServer.StartAsync(loader: new EveryTokenEndsLoader());

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData("v1/completions", """{"prompt": "hi", "max_tokens": 5, "temperature": 0}""", "stop", 0)]
    [InlineData("v1/completions", """{"prompt": "hi", "max_tokens": 5, "temperature": 0, "ignore_eos": true}""", "length", 5)]
    [InlineData("v1/chat/completions", """{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "ignore_eos": true}""", "length", 5)]
    public async Task Post_IgnoreEos_RunsPastEndTokensToMaxTokens(string path, string body, string finish, int tokens)
    {
        using HttpResponseMessage response = await _server.Client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        string text = await response.Content.ReadAsStringAsync();

        Assert.True(response.IsSuccessStatusCode, text);
        using JsonDocument json = JsonDocument.Parse(text);
        Assert.Equal(finish, json.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(tokens, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Post_IgnoreEosNotABoolean_Is400NamingTheField()
    {
        using HttpResponseMessage response = await _server.Client.PostAsync("v1/completions",
            new StringContent("""{"prompt": "hi", "ignore_eos": "yes"}""", Encoding.UTF8, "application/json"));

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Contains("$.ignore_eos", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private sealed class EveryTokenEndsLoader : IModelLoader
    {
        public LoadedModel Load(HaloOptions options, Action<string> progress, ILogger logger, CancellationToken cancellationToken)
        {
            LoadedModel model = new EngineModelLoader().Load(options, progress, logger, cancellationToken);
            return new LoadedModel
            {
                Id = model.Id,
                Path = model.Path,
                Backend = model.Backend,
                Tokenizer = new EveryTokenEnds(model.Tokenizer, model.Backend.Config.VocabSize),
                Samplers = model.Samplers,
                RandomWeights = model.RandomWeights,
                Owner = model.Owner,
            };
        }
    }

    private sealed class EveryTokenEnds(IServedTokenizer inner, int vocab) : IServedTokenizer
    {
        public int VocabSize => inner.VocabSize;

        public IReadOnlyList<int> StopTokens { get; } = Enumerable.Range(0, vocab).ToArray();

        public int[] Encode(string text, bool addBos) => inner.Encode(text, addBos);

        public int[] EncodeChat(IReadOnlyList<(string Role, string Content)> messages) => inner.EncodeChat(messages);

        public ReadOnlySpan<byte> TokenBytes(int token) => inner.TokenBytes(token);
    }
}
