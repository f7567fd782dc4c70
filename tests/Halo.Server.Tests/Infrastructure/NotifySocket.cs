using System.Net.Sockets;
using System.Text;

namespace Halo.Server.Tests.Infrastructure;

/// <summary>A real sd_notify endpoint: a Unix datagram socket the daemon under test sends to (NOTIFY_SOCKET).</summary>
internal sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket;
    private readonly List<(TimeSpan At, string Message)> _messages = [];
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private readonly Thread _reader;
    private volatile bool _closed;

    public NotifySocket(string directory)
    {
        Path = System.IO.Path.Combine(directory, "notify.sock");
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _socket.Bind(new UnixDomainSocketEndPoint(Path));
        _reader = new Thread(Read) { IsBackground = true };
        _reader.Start();
    }

    public string Path { get; }

    /// <summary>Every message so far (each may hold several NAME=value lines), with its arrival time.</summary>
    public IReadOnlyList<(TimeSpan At, string Message)> Messages
    {
        get
        {
            lock (_messages)
            {
                return [.. _messages];
            }
        }
    }

    /// <summary>Each NAME=value line received, in order.</summary>
    public IReadOnlyList<string> Lines => Messages.SelectMany(m => m.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries)).ToList();

    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Waits until a line starting with <paramref name="prefix"/> arrives; returns its arrival time.</summary>
    public TimeSpan WaitFor(string prefix, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            foreach ((TimeSpan at, string message) in Messages)
            {
                if (message.Split('\n').Any(l => l.StartsWith(prefix, StringComparison.Ordinal)))
                {
                    return at;
                }
            }

            Thread.Sleep(20);
        }

        throw new TimeoutException($"no '{prefix}' within {timeout}; got: {string.Join(" | ", Lines)}");
    }

    public void Dispose()
    {
        _closed = true;
        _socket.Dispose();
    }

    private void Read()
    {
        var buffer = new byte[4096];
        while (!_closed)
        {
            try
            {
                int n = _socket.Receive(buffer);
                lock (_messages)
                {
                    _messages.Add((_clock.Elapsed, Encoding.UTF8.GetString(buffer, 0, n)));
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
        }
    }
}
