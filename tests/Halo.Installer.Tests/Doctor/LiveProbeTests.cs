using System.Net;
using System.Net.Sockets;
using Halo.Installer.Doctor;
using Halo.Installer.Doctor.Checks;

namespace Halo.Installer.Tests.Doctor;

/// <summary>The live probes against real things: an HTTP server on loopback, rocminfo stand-ins as real processes.</summary>
public class LiveProbeTests
{
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Answers every request with <paramref name="status"/> until disposed.</summary>
    private static (HttpListener Listener, string Address) Serve(HttpStatusCode status)
    {
        int port = FreePort();
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        _ = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                HttpListenerContext request;
                try
                {
                    request = await listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                request.Response.StatusCode = (int)status;
                request.Response.Close();
            }
        });
        return (listener, $"127.0.0.1:{port}");
    }

    private static DoctorContext LiveContext(FakeMachine m, string listen) =>
        new(m.SystemRoot, new DoctorSettings { Listen = listen }, liveProbes: true) { ProbeTimeout = TimeSpan.FromSeconds(20) };

    [Theory]
    [InlineData(HttpStatusCode.OK, CheckStatus.Ok)]
    [InlineData(HttpStatusCode.ServiceUnavailable, CheckStatus.Warn)]
    [InlineData(HttpStatusCode.Unauthorized, CheckStatus.Warn)]
    [InlineData(HttpStatusCode.InternalServerError, CheckStatus.Fail)]
    public async Task EndpointCheck_ServerAnswers_StatusFollowsCode(HttpStatusCode code, CheckStatus expected)
    {
        using var m = new FakeMachine();
        (HttpListener listener, string address) = Serve(code);
        using (listener)
        {
            CheckResult result = await new EndpointCheck().RunAsync(LiveContext(m, address), CancellationToken.None);
            Assert.True(expected == result.Status, result.Finding);
        }
    }

    [Fact]
    public async Task EndpointCheck_NothingListening_FailsNamingAddress()
    {
        using var m = new FakeMachine();
        string address = $"127.0.0.1:{FreePort()}";
        CheckResult result = await new EndpointCheck().RunAsync(LiveContext(m, address), CancellationToken.None);

        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains(address, result.Finding);
    }

    [Theory]
    [InlineData("0.0.0.0:8180", "http://127.0.0.1:8180/health")]
    [InlineData("[::]:8180", "http://[::1]:8180/health")]
    [InlineData("127.0.0.1:9000", "http://127.0.0.1:9000/health")]
    [InlineData("http://localhost:8180", "http://localhost:8180/health")]
    public void HealthUri_ListenAddress_ProbeAddress(string listen, string expected) =>
        Assert.Equal(expected, EndpointCheck.HealthUri(listen)!.ToString());

    [Fact]
    public void HealthUri_UnixSocket_Null() => Assert.Null(EndpointCheck.HealthUri("unix:/run/halo.sock"));

    [Theory]
    [InlineData("echo '  Name:                    gfx1151'", CheckStatus.Ok)]
    [InlineData("echo 'Name: gfx1100'", CheckStatus.Fail)]
    [InlineData("echo 'hsa api call failure' >&2; exit 1", CheckStatus.Fail)]
    [InlineData("sleep 30", CheckStatus.Fail)]
    public async Task RocminfoCheck_RealProcess_StatusFromOutput(string body, CheckStatus expected)
    {
        using FakeMachine m = FakeMachine.StrixHalo();
        m.Script("/opt/rocm-7.2.0/bin/rocminfo", "#!/bin/sh\n" + body + "\n");
        // Generous for a loaded CI machine; the hanging stand-in (sleep 30) still outlasts it.
        bool hangs = body.StartsWith("sleep", StringComparison.Ordinal);
        var context = new DoctorContext(m.SystemRoot, liveProbes: true) { ProbeTimeout = TimeSpan.FromSeconds(hangs ? 2 : 20) };

        CheckResult result = await new RocminfoCheck().RunAsync(context, CancellationToken.None);

        Assert.True(expected == result.Status, result.Finding);
        if (hangs)
        {
            Assert.Contains("did not finish", result.Finding);
        }
    }
}
