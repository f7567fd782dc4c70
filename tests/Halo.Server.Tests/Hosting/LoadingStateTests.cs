using System.Net;
using Halo.Server.Tests.Infrastructure;
using Microsoft.Extensions.Hosting;

namespace Halo.Server.Tests.Hosting;

public sealed class LoadingStateTests
{
    [Fact]
    public async Task Health_WhileLoading_503ThenReady200AndApiRefusesUntilThen()
    {
        using var gate = new ManualResetEventSlim(false);
        IHost host = HaloHost.CreateHostBuilder(InProcessServer.DefaultOptions(), new GatedLoader(gate), []).Build();
        Task start = host.StartAsync();
        try
        {
            // The web server is up before the model service starts loading.
            IReadOnlyList<string> urls = [];
            for (var deadline = DateTime.UtcNow.AddSeconds(30); urls.Count == 0 && DateTime.UtcNow < deadline; await Task.Delay(10))
            {
                urls = HaloHost.ListeningUrls(host);
            }

            using var client = new HttpClient { BaseAddress = new Uri(urls[0] + "/") };
            using HttpResponseMessage loading = await client.GetAsync("health");
            using HttpResponseMessage chat = await client.PostAsync("v1/chat/completions", new StringContent("""{"messages": [{"role": "user", "content": "hi"}]}"""));
            using HttpResponseMessage live = await client.GetAsync("livez");
            Assert.False(start.IsCompleted, "host start (and READY=1) waits for the model");

            gate.Set();
            await start;
            using HttpResponseMessage ready = await client.GetAsync("health");

            Assert.Equal(HttpStatusCode.ServiceUnavailable, loading.StatusCode);
            Assert.Contains("\"status\":\"loading\"", await loading.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, chat.StatusCode);
            Assert.Contains("unavailable_error", await chat.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }
        finally
        {
            gate.Set();
            await start;
            await host.StopAsync();
            host.Dispose();
        }
    }
}
