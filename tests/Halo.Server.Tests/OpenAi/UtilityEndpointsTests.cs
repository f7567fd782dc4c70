using System.Net;
using System.Text;
using System.Text.Json;
using Halo.Server.Tests.Infrastructure;

namespace Halo.Server.Tests.OpenAi;

public sealed class UtilityEndpointsTests : IAsyncLifetime
{
    private InProcessServer _server = null!;

    public async Task InitializeAsync() => _server = await InProcessServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<JsonElement> Post(string path, string body)
    {
        using HttpResponseMessage response = await _server.Client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task TokenizeThenDetokenize_Text_RoundTrips()
    {
        JsonElement tokens = await Post("tokenize", """{"content": "Hello, wörld!", "add_special": false}""");
        int[] ids = tokens.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray();

        JsonElement text = await Post("detokenize", JsonSerializer.Serialize(new { tokens = ids }));

        Assert.Equal(ids.Length, tokens.GetProperty("count").GetInt32());
        Assert.Equal(512, tokens.GetProperty("max_model_len").GetInt32());
        Assert.Equal("Hello, wörld!", text.GetProperty("content").GetString());
    }

    [Fact]
    public async Task Tokenize_AddSpecial_PrependsBos()
    {
        JsonElement plain = await Post("tokenize", """{"content": "hi", "add_special": false}""");
        JsonElement special = await Post("tokenize", """{"prompt": "hi"}""");

        Assert.Equal(plain.GetProperty("count").GetInt32() + 1, special.GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task Tokenize_Messages_MatchesTheChatPromptTokenCount()
    {
        const string messages = """[{"role": "user", "content": "Say <|eot_id|> hello."}]""";
        JsonElement tokens = await Post("tokenize", $$"""{"messages": {{messages}}}""");
        JsonElement chat = await Post("v1/chat/completions", $$"""{"messages": {{messages}}, "max_tokens": 1}""");

        Assert.Equal(chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), tokens.GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task ModelsHealthLivez_Ready_DescribeTheServedModel()
    {
        using JsonDocument models = JsonDocument.Parse(await _server.Client.GetStringAsync("v1/models"));
        using JsonDocument health = JsonDocument.Parse(await _server.Client.GetStringAsync("health"));
        using JsonDocument live = JsonDocument.Parse(await _server.Client.GetStringAsync("livez"));

        JsonElement model = models.RootElement.GetProperty("data")[0];
        Assert.Equal("list", models.RootElement.GetProperty("object").GetString());
        Assert.Equal("tiny", model.GetProperty("id").GetString());
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.True(model.GetProperty("random_weights").GetBoolean());
        Assert.Equal("ok", health.RootElement.GetProperty("status").GetString());
        Assert.Equal(4, health.RootElement.GetProperty("slots").GetInt32());
        Assert.Equal("alive", live.RootElement.GetProperty("status").GetString());
    }
}
