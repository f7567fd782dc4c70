using System.Globalization;
using Microsoft.Extensions.Hosting.Systemd;

namespace Halo.Server.Hosting;

/// <summary>The sd_notify messages Microsoft.Extensions.Hosting.Systemd has no constant for (it sends READY=1 and
/// STOPPING=1 itself).</summary>
internal static class NotifyMessages
{
    public static readonly ServiceState Watchdog = new("WATCHDOG=1");

    /// <summary>A one-line status shown by <c>systemctl status</c> (newlines would end the field).</summary>
    public static ServiceState Status(string text) => new("STATUS=" + text.ReplaceLineEndings(" "));

    /// <summary>Asks systemd for this much more start (or stop) time from now: long model loads.</summary>
    public static ServiceState ExtendTimeout(TimeSpan time) =>
        new("EXTEND_TIMEOUT_USEC=" + ((long)time.TotalMicroseconds).ToString(CultureInfo.InvariantCulture));
}
