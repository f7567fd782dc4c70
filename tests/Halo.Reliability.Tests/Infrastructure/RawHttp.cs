using System.Net.Sockets;
using System.Text;

namespace Halo.Reliability.Tests.Infrastructure;

/// <summary>HTTP/1.1 over a bare socket, for what HttpClient will not send: a body far larger than its
/// Content-Length claims to be read, a body dribbled a byte at a time, chunked bodies with no end.</summary>
internal sealed class RawHttp : IDisposable
{
    private readonly TcpClient _tcp;

    private RawHttp(TcpClient tcp)
    {
        _tcp = tcp;
        Stream = tcp.GetStream();
    }

    public NetworkStream Stream { get; }

    public static async Task<RawHttp> ConnectAsync(Uri url)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(url.Host, url.Port);
        tcp.NoDelay = true;
        return new RawHttp(tcp);
    }

    public Task SendHeadAsync(string method, string path, IEnumerable<string> headers)
    {
        var head = new StringBuilder();
        head.Append(method).Append(' ').Append(path).Append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        foreach (string h in headers)
        {
            head.Append(h).Append("\r\n");
        }

        head.Append("\r\n");
        return Stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString())).AsTask();
    }

    /// <summary>Reads until the server closes the connection, <paramref name="timeout"/> passes, or a complete
    /// response head has arrived and no more comes for a moment; returns what arrived ("" when nothing did).</summary>
    public async Task<string> ReadResponseAsync(TimeSpan timeout)
    {
        var received = new MemoryStream();
        var buffer = new byte[16384];
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                int n = await Stream.ReadAsync(buffer, cts.Token);
                if (n == 0)
                {
                    break;
                }

                received.Write(buffer, 0, n);
                if (Encoding.ASCII.GetString(received.ToArray()).Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    cts.CancelAfter(TimeSpan.FromMilliseconds(500));
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
        {
            // A reset or the deadline: what arrived so far is the answer.
        }

        return Encoding.UTF8.GetString(received.ToArray());
    }

    /// <summary>The status code of an HTTP response text, or 0 when there is none.</summary>
    public static int Status(string response) =>
        response.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) && response.Length >= 12 ? int.Parse(response.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture) : 0;

    public void Dispose() => _tcp.Dispose();
}
