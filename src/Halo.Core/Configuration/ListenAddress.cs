using System.Globalization;
using System.Net;

namespace Halo.Core.Configuration;

/// <summary>One address to listen on: an IP endpoint (<c>127.0.0.1:8180</c>, <c>[::1]:8180</c>,
/// <c>0.0.0.0:8180</c>, <c>localhost:8180</c>) or a Unix socket (<c>unix:/run/halo/halo.sock</c>).</summary>
public sealed record ListenAddress
{
    private ListenAddress(IPEndPoint? endPoint, string? unixPath, string text)
    {
        EndPoint = endPoint;
        UnixPath = unixPath;
        Text = text;
    }

    public IPEndPoint? EndPoint { get; }

    public string? UnixPath { get; }

    public string Text { get; }

    public bool IsLoopback => UnixPath is not null || IPAddress.IsLoopback(EndPoint!.Address);

    public override string ToString() => Text;

    public static ListenAddress Parse(string text) =>
        TryParse(text, out ListenAddress? address, out string error) ? address : throw new FormatException(error);

    public static bool TryParse(string text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ListenAddress? address, out string error)
    {
        address = null;
        text = text.Trim();
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = text["unix:".Length..];
            if (!System.IO.Path.IsPathFullyQualified(path))
            {
                error = $"'{text}': a unix socket path must be absolute";
                return false;
            }

            address = new ListenAddress(null, path, text);
            error = "";
            return true;
        }

        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            error = $"'{text}': expected host:port, [ipv6]:port or unix:/path";
            return false;
        }

        string host = text[..colon];
        string portText = text[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            error = $"'{text}': port '{portText}' is not a number from 0 to 65535";
            return false;
        }

        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        IPAddress? ip = host switch
        {
            "localhost" => IPAddress.Loopback,
            "*" => IPAddress.Any,
            _ => IPAddress.TryParse(host, out IPAddress? parsed) ? parsed : null,
        };
        if (ip is null)
        {
            error = $"'{text}': host '{host}' is not an IP address (use 127.0.0.1, ::1, 0.0.0.0 or localhost)";
            return false;
        }

        address = new ListenAddress(new IPEndPoint(ip, port), null, text);
        error = "";
        return true;
    }
}
