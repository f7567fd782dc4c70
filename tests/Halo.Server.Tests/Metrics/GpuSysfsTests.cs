using Halo.Server.Metrics;
using Halo.Testing;

namespace Halo.Server.Tests.Metrics;

public sealed class GpuSysfsTests
{
    /// <summary>A fake sysfs with a non-AMD card0, a connector, and an amdgpu card1 with hwmon.</summary>
    internal static void WriteFakeAmdGpu(string root, bool withPowerAverage = true)
    {
        void Write(string relative, string text)
        {
            string path = Path.Combine(root, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, text);
        }

        Write("class/drm/card0/device/vendor", "0x8086\n");
        Write("class/drm/card0/device/gpu_busy_percent", "99\n");
        Write("class/drm/card1-DP-1/status", "connected\n");
        Write("class/drm/card1/device/vendor", "0x1002\n");
        Write("class/drm/card1/device/gpu_busy_percent", "37\n");
        Write("class/drm/card1/device/mem_info_vram_used", "536870912\n");
        Write("class/drm/card1/device/mem_info_gtt_used", "1073741824\n");
        Write("class/drm/card1/device/hwmon/hwmon3/name", "amdgpu\n");
        Write("class/drm/card1/device/hwmon/hwmon3/temp1_input", "51000\n");
        Write(withPowerAverage ? "class/drm/card1/device/hwmon/hwmon3/power1_average" : "class/drm/card1/device/hwmon/hwmon3/power1_input", "42500000\n");
    }

    [Fact]
    public void Read_AmdCardAmongOthers_ReadsItsFilesInSiUnits()
    {
        using var root = new TempDir();
        WriteFakeAmdGpu(root.Path);

        GpuReading? reading = new GpuSysfs(root.Path).Read();

        Assert.NotNull(reading);
        Assert.Equal("card1", reading.Card);
        Assert.Equal(0.37, reading.BusyRatio!.Value, 6);
        Assert.Equal(536870912, reading.VramUsedBytes);
        Assert.Equal(1073741824, reading.GttUsedBytes);
        Assert.Null(reading.VisibleVramUsedBytes);
        Assert.Equal(51, reading.TemperatureCelsius);
        Assert.Equal(42.5, reading.PowerWatts);
    }

    [Fact]
    public void Read_OnlyPowerInput_FallsBackToIt()
    {
        using var root = new TempDir();
        WriteFakeAmdGpu(root.Path, withPowerAverage: false);

        Assert.Equal(42.5, new GpuSysfs(root.Path).Read()!.PowerWatts);
    }

    [Fact]
    public void Read_NoAmdGpu_Null()
    {
        using var root = new TempDir();
        Directory.CreateDirectory(Path.Combine(root.Path, "class", "drm", "card0", "device"));
        File.WriteAllText(Path.Combine(root.Path, "class", "drm", "card0", "device", "vendor"), "0x10de\n");

        Assert.Null(new GpuSysfs(root.Path).Read());
        Assert.Null(new GpuSysfs(Path.Combine(root.Path, "absent")).Read());
    }
}
