using System.Globalization;

namespace Halo.Server.Metrics;

/// <summary>One reading of an amdgpu device's sysfs files; null where the file is absent or unreadable.</summary>
internal sealed record GpuReading(
    string Card,
    double? BusyRatio,
    double? VramUsedBytes,
    double? GttUsedBytes,
    double? VisibleVramUsedBytes,
    double? TemperatureCelsius,
    double? PowerWatts);

/// <summary>
/// Reads the first AMD GPU (PCI vendor 0x1002) under <c>{root}/class/drm/card*/device</c>: <c>gpu_busy_percent</c>,
/// <c>mem_info_{vram,gtt,vis_vram}_used</c>, and the amdgpu hwmon's <c>temp1_input</c> (millidegrees) and
/// <c>power1_average</c> or <c>power1_input</c> (microwatts). The card is found again on every read, so a GPU
/// reset that renumbers cards does not leave stale gauges.
/// </summary>
internal sealed class GpuSysfs(string root)
{
    public GpuReading? Read()
    {
        string drm = Path.Combine(root, "class", "drm");
        if (!Directory.Exists(drm))
        {
            return null;
        }

        string[] cards;
        try
        {
            cards = Directory.GetDirectories(drm, "card*");
        }
        catch (IOException)
        {
            return null;
        }

        Array.Sort(cards, StringComparer.Ordinal);
        foreach (string card in cards)
        {
            string name = Path.GetFileName(card);
            if (name.Contains('-', StringComparison.Ordinal))
            {
                continue;   // connectors (card0-DP-1), not devices
            }

            string device = Path.Combine(card, "device");
            if (ReadText(Path.Combine(device, "vendor"))?.Trim() != "0x1002")
            {
                continue;
            }

            string? hwmon = FindAmdgpuHwmon(device);
            double? power = hwmon is null ? null : ReadNumber(Path.Combine(hwmon, "power1_average")) ?? ReadNumber(Path.Combine(hwmon, "power1_input"));
            return new GpuReading(
                name,
                ReadNumber(Path.Combine(device, "gpu_busy_percent")) / 100,
                ReadNumber(Path.Combine(device, "mem_info_vram_used")),
                ReadNumber(Path.Combine(device, "mem_info_gtt_used")),
                ReadNumber(Path.Combine(device, "mem_info_vis_vram_used")),
                hwmon is null ? null : ReadNumber(Path.Combine(hwmon, "temp1_input")) / 1000,
                power / 1_000_000);
        }

        return null;
    }

    private static string? FindAmdgpuHwmon(string device)
    {
        string dir = Path.Combine(device, "hwmon");
        if (!Directory.Exists(dir))
        {
            return null;
        }

        string[] hwmons = Directory.GetDirectories(dir, "hwmon*");
        Array.Sort(hwmons, StringComparer.Ordinal);
        foreach (string hwmon in hwmons)
        {
            if (ReadText(Path.Combine(hwmon, "name"))?.Trim() == "amdgpu")
            {
                return hwmon;
            }
        }

        return null;
    }

    private static double? ReadNumber(string path) =>
        double.TryParse(ReadText(path)?.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double value) ? value : null;

    private static string? ReadText(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;   // sysfs files can fail to read while the GPU is resetting
        }
    }
}
