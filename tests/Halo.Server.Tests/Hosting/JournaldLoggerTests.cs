using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Halo.Server.Hosting;
using Halo.Testing;
using Microsoft.Extensions.Logging;

namespace Halo.Server.Tests.Hosting;

public sealed class JournaldLoggerTests
{
    [Fact]
    public void Log_StructuredMessage_SendsJournalFieldsToTheSocket()
    {
        using var dir = new TempDir();
        string path = dir.File("journal.sock");
        using var journal = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        journal.Bind(new UnixDomainSocketEndPoint(path));
        journal.ReceiveTimeout = 5000;
        using var provider = new JournaldLoggerProvider(path, "halo-server", LogLevel.Information);
        ILogger logger = provider.CreateLogger("Halo.Test");

        logger.LogWarning(new EventId(42), new InvalidOperationException("boom\nsecond line"), "Model {Model} took {LoadSeconds} s", "demo", 1.5);
        logger.LogDebug("filtered out");
        var buffer = new byte[65536];
        int n = journal.Receive(buffer);
        Dictionary<string, string> fields = Parse(buffer.AsSpan(0, n));

        Assert.Equal("Model demo took 1.5 s", fields["MESSAGE"]);
        Assert.Equal("4", fields["PRIORITY"]);
        Assert.Equal("halo-server", fields["SYSLOG_IDENTIFIER"]);
        Assert.Equal("Halo.Test", fields["HALO_CATEGORY"]);
        Assert.Equal("42", fields["HALO_EVENT_ID"]);
        Assert.Equal("demo", fields["MODEL"]);
        Assert.Equal("1.5", fields["LOADSECONDS"]);
        Assert.Contains("boom\nsecond line", fields["EXCEPTION"], StringComparison.Ordinal);
        Assert.Equal(0, journal.Available);
    }

    [Theory]
    [InlineData("Model", "MODEL")]
    [InlineData("_private", "PRIVATE")]
    [InlineData("9lives", "LIVES")]
    [InlineData("a.b-c", "A_B_C")]
    public void FieldName_AnyKey_IsAValidJournalFieldName(string key, string expected) =>
        Assert.Equal(expected, JournaldLoggerProvider.FieldName(key));

    /// <summary>The native protocol: NAME=value lines, or NAME, newline, 64-bit LE length, bytes, newline.</summary>
    private static Dictionary<string, string> Parse(ReadOnlySpan<byte> data)
    {
        var fields = new Dictionary<string, string>();
        while (data.Length > 0)
        {
            int newline = data.IndexOf((byte)'\n');
            int equals = data[..newline].IndexOf((byte)'=');
            if (equals >= 0)
            {
                fields[Encoding.ASCII.GetString(data[..equals])] = Encoding.UTF8.GetString(data[(equals + 1)..newline]);
                data = data[(newline + 1)..];
            }
            else
            {
                string name = Encoding.ASCII.GetString(data[..newline]);
                int length = (int)BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(newline + 1, 8));
                fields[name] = Encoding.UTF8.GetString(data.Slice(newline + 9, length));
                data = data[(newline + 9 + length + 1)..];
            }
        }

        return fields;
    }
}
