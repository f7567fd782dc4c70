using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Hosting;

/// <summary>
/// Logs to journald over its native protocol (datagrams of <c>FIELD=value</c> lines to
/// <c>/run/systemd/journal/socket</c>), so structured values of a log message become journal fields
/// (<c>journalctl -u halo-server MODEL=demo</c>) next to MESSAGE, PRIORITY and SYSLOG_IDENTIFIER.
/// </summary>
internal sealed class JournaldLoggerProvider : ILoggerProvider
{
    public const string DefaultSocket = "/run/systemd/journal/socket";

    private readonly Socket _socket;
    private readonly UnixDomainSocketEndPoint _endPoint;
    private readonly string _identifier;
    private readonly LogLevel _minimum;

    public JournaldLoggerProvider(string socketPath, string identifier, LogLevel minimum)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _endPoint = new UnixDomainSocketEndPoint(socketPath);
        _identifier = identifier;
        _minimum = minimum;
    }

    public ILogger CreateLogger(string categoryName) => new JournaldLogger(this, categoryName);

    public void Dispose() => _socket.Dispose();

    private void Send(byte[] datagram, int length)
    {
        try
        {
            _socket.SendTo(datagram.AsSpan(0, length), SocketFlags.None, _endPoint);
        }
        catch (SocketException)
        {
            // journald restarting or gone: a log line is not worth failing a request for.
        }
    }

    /// <summary>Journal field names: upper-case letters, digits and underscores, not starting with _ or a digit.</summary>
    internal static string FieldName(string key)
    {
        var name = new StringBuilder(key.Length);
        foreach (char c in key)
        {
            name.Append(char.IsAsciiLetterOrDigit(c) ? char.ToUpperInvariant(c) : '_');
        }

        while (name.Length > 0 && (name[0] == '_' || char.IsAsciiDigit(name[0])))
        {
            name.Remove(0, 1);
        }

        return name.Length == 0 ? "FIELD" : name.ToString();
    }

    private static int Priority(LogLevel level) => level switch
    {
        LogLevel.Critical => 2,
        LogLevel.Error => 3,
        LogLevel.Warning => 4,
        LogLevel.Information => 6,
        _ => 7,
    };

    private sealed class JournaldLogger(JournaldLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= provider._minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            using var buffer = new MemoryStream(256);
            Field(buffer, "MESSAGE", formatter(state, exception));
            Field(buffer, "PRIORITY", Priority(logLevel).ToString(System.Globalization.CultureInfo.InvariantCulture));
            Field(buffer, "SYSLOG_IDENTIFIER", provider._identifier);
            Field(buffer, "HALO_CATEGORY", category);
            if (eventId.Id != 0)
            {
                Field(buffer, "HALO_EVENT_ID", eventId.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            if (exception is not null)
            {
                Field(buffer, "EXCEPTION", exception.ToString());
            }

            if (state is IReadOnlyList<KeyValuePair<string, object?>> values)
            {
                foreach ((string key, object? value) in values)
                {
                    if (key != "{OriginalFormat}")
                    {
                        Field(buffer, FieldName(key), Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "");
                    }
                }
            }

            provider.Send(buffer.GetBuffer(), (int)buffer.Length);
        }

        /// <summary>NAME=value, or for values with newlines NAME, newline, 64-bit little-endian length, value.</summary>
        private static void Field(MemoryStream buffer, string name, string value)
        {
            buffer.Write(Encoding.ASCII.GetBytes(name));
            byte[] bytes = Encoding.UTF8.GetBytes(value);
            if (value.Contains('\n', StringComparison.Ordinal))
            {
                buffer.WriteByte((byte)'\n');
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)bytes.Length);
                buffer.Write(length);
            }
            else
            {
                buffer.WriteByte((byte)'=');
            }

            buffer.Write(bytes);
            buffer.WriteByte((byte)'\n');
        }
    }
}
