using Microsoft.Extensions.Hosting.Systemd;

namespace Halo.Server.Tests.Infrastructure;

internal static class SystemdNotifiers
{
    /// <summary>Microsoft's SystemdNotifier reads NOTIFY_SOCKET when constructed; point it at the test socket.</summary>
    public static SystemdNotifier For(string path)
    {
        lock (typeof(SystemdNotifiers))
        {
            string? saved = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", path);
            try
            {
                return new SystemdNotifier();
            }
            finally
            {
                Environment.SetEnvironmentVariable("NOTIFY_SOCKET", saved);
            }
        }
    }
}
