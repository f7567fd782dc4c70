using System.Net;
using System.Net.Sockets;

namespace Halo.Installer.Doctor.Checks;

/// <summary>`endpoint.health`: GET /health on the configured listen address answers 200 (a live HTTP probe).</summary>
public sealed class EndpointCheck : DoctorCheck
{
    public override string Id => "endpoint.health";

    public override string Title => "API endpoint";

    /// <summary>"0.0.0.0:8180" -> "http://127.0.0.1:8180"; a unix socket or unparsable address -> null.</summary>
    public static Uri? HealthUri(string listen)
    {
        string address = listen.Trim();
        if (address.StartsWith("unix:", StringComparison.Ordinal) || address.StartsWith('/'))
        {
            return null;
        }

        if (!address.Contains("://", StringComparison.Ordinal))
        {
            address = "http://" + address;
        }

        // Wildcard binds are probed on loopback of the same family.
        address = address.Replace("://*:", "://127.0.0.1:", StringComparison.Ordinal)
            .Replace("://+:", "://127.0.0.1:", StringComparison.Ordinal)
            .Replace("://0.0.0.0:", "://127.0.0.1:", StringComparison.Ordinal)
            .Replace("://[::]:", "://[::1]:", StringComparison.Ordinal);
        return Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) && uri.Scheme is "http" or "https"
            ? new Uri($"{uri.Scheme}://{uri.Authority}/health")
            : null;
    }

    public override async Task<CheckResult> RunAsync(DoctorContext context, CancellationToken cancellationToken)
    {
        if (!context.LiveProbes)
        {
            return Skip("not run under --root (probes the live daemon)");
        }

        Uri? uri = HealthUri(context.Settings.Listen);
        if (uri is null)
        {
            return Skip($"listen address '{context.Settings.Listen}' is not a TCP address this check can probe");
        }

        using var http = new HttpClient { Timeout = context.ProbeTimeout };
        try
        {
            using HttpResponseMessage response = await http.GetAsync(uri, cancellationToken);
            return response.StatusCode switch
            {
                HttpStatusCode.OK => Ok($"{uri} answers 200"),
                HttpStatusCode.ServiceUnavailable => Warn($"{uri} answers 503: loading the model or draining", "wait for the load to finish; journalctl -u halo-server -f"),
                HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => Warn($"{uri} answers {(int)response.StatusCode}: /health needs an API key", "keep /health public (auth.public_paths) so that probes and load balancers can use it"),
                _ => Fail($"{uri} answers {(int)response.StatusCode}", "journalctl -u halo-server -e"),
            };
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
        {
            return Fail($"nothing listens on {uri.Authority}", "sudo systemctl start halo-server.socket halo-server.service; check listen in /etc/halo/halo.yaml");
        }
        catch (HttpRequestException e)
        {
            return Fail($"{uri}: {e.Message}", "journalctl -u halo-server -e");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Fail($"{uri} did not answer within {context.ProbeTimeout.TotalSeconds:0} s", "the daemon may be wedged: journalctl -u halo-server -e; sudo systemctl restart halo-server");
        }
    }
}
