using System.Net;
using System.Net.Sockets;
using Halo.Core.Configuration;
using Halo.Server.Tests.Infrastructure;
using Halo.Testing;
using Microsoft.Extensions.Hosting;

namespace Halo.Server.Tests.Hosting;

public sealed class ListenAddressTests
{
    [Fact]
    public async Task Start_UnixSocketAddress_ServesHttpOnIt()
    {
        using var dir = new TempDir();
        string path = dir.File("halo.sock");
        HaloOptions options = InProcessServer.DefaultOptions(o => o with { Server = o.Server with { Listen = [ListenAddress.Parse("unix:" + path)] } });
        using IHost host = HaloHost.CreateHostBuilder(options, new Halo.Server.Inference.EngineModelLoader(), []).Build();
        await host.StartAsync();
        try
        {
            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            };
            using var client = new HttpClient(handler) { BaseAddress = new Uri("http://halo/") };

            using HttpResponseMessage health = await client.GetAsync("health");

            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
