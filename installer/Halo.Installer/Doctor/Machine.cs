using System.Globalization;

namespace Halo.Installer.Doctor;

/// <summary>An AMD GPU as the kernel's KFD topology and DRM class describe it.</summary>
/// <param name="GfxTargetVersion">KFD gfx_target_version (110501 is gfx1151, Strix Halo); 0 when unknown.</param>
public sealed record GpuInfo(string Source, int GfxTargetVersion, string Vendor, string Device)
{
    public bool IsStrixHalo => GfxTargetVersion == Machine.StrixHaloGfxTarget || (Vendor == "0x1002" && Device == Machine.StrixHaloDeviceId);

    /// <summary>"gfx1151" from 110501 (major*10000 + minor*100 + stepping, minor and stepping in hex digits).</summary>
    public string GfxName => GfxTargetVersion <= 0
        ? "unknown gfx"
        : $"gfx{GfxTargetVersion / 10000}{(GfxTargetVersion / 100) % 100:x}{GfxTargetVersion % 100:x}";
}

/// <summary>Facts about the machine under a root that several checks and provision share.</summary>
public sealed class Machine
{
    public const int StrixHaloGfxTarget = 110501;
    public const string StrixHaloDeviceId = "0x1586";
    public const string AmdVendorId = "0x1002";
    public static readonly Version MinimumKernel = new(6, 18, 4);
    public static readonly Version MinimumRocm = new(7, 2);

    private readonly Lazy<IReadOnlyList<GpuInfo>> _kfdNodes;
    private readonly Lazy<IReadOnlyList<GpuInfo>> _drmDevices;

    public Machine(SystemRoot root)
    {
        Root = root;
        _kfdNodes = new(ReadKfdNodes);
        _drmDevices = new(ReadDrmDevices);
    }

    public SystemRoot Root { get; }

    /// <summary>GPU nodes of the KFD topology (CPU-only nodes have gfx_target_version 0 and are left out).</summary>
    public IReadOnlyList<GpuInfo> KfdNodes => _kfdNodes.Value;

    /// <summary>AMD display/compute devices from /sys/class/drm/card*/device.</summary>
    public IReadOnlyList<GpuInfo> DrmDevices => _drmDevices.Value;

    /// <summary>True when the hardware is a Strix Halo iGPU by either source, even if the driver is not working.</summary>
    public bool HasStrixHalo => KfdNodes.Any(g => g.IsStrixHalo) || DrmDevices.Any(g => g.IsStrixHalo);

    public bool HasAmdGpu => KfdNodes.Count > 0 || DrmDevices.Count > 0;

    /// <summary>The running kernel's release, e.g. "6.18.4-200.fc43.x86_64"; null when unreadable.</summary>
    public string? KernelRelease =>
        Root.ReadValue("/proc/sys/kernel/osrelease") is { Length: > 0 } release
            ? release
            : Root.ReadValue("/proc/version") is { } version && version.Split(' ') is { Length: > 2 } words ? words[2] : null;

    /// <summary>Leading numeric version of a release string: "6.18.4-200.fc43" -> 6.18.4; "6.19-rc2" -> 6.19.0.</summary>
    public static Version? ParseVersion(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        var numbers = new List<int>();
        int i = 0;
        while (i < text.Length && numbers.Count < 4)
        {
            int start = i;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                i++;
            }

            if (i == start || !int.TryParse(text.AsSpan(start, i - start), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            {
                break;
            }

            numbers.Add(n);
            if (i >= text.Length || text[i] != '.')
            {
                break;
            }

            i++;
        }

        return numbers.Count switch
        {
            0 => null,
            1 => new Version(numbers[0], 0, 0),
            2 => new Version(numbers[0], numbers[1], 0),
            3 => new Version(numbers[0], numbers[1], numbers[2]),
            _ => new Version(numbers[0], numbers[1], numbers[2], numbers[3]),
        };
    }

    /// <summary>MemTotal from /proc/meminfo in bytes; 0 when unreadable.</summary>
    public long MemoryBytes => Runtime.ProcessScan.StatusField(Root.ReadText("/proc/meminfo") ?? "", "MemTotal") * 1024;

    /// <summary>The kernel command line words.</summary>
    public IReadOnlyList<string> KernelCommandLine =>
        (Root.ReadValue("/proc/cmdline") ?? "").Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);

    private List<GpuInfo> ReadKfdNodes()
    {
        var nodes = new List<GpuInfo>();
        foreach (string node in Root.List("/sys/class/kfd/kfd/topology/nodes"))
        {
            string properties = Root.ReadText(node + "/properties") ?? "";
            int gfx = 0;
            string vendor = "";
            string device = "";
            foreach (string line in properties.Split('\n'))
            {
                string[] kv = line.Split(' ', 2, StringSplitOptions.TrimEntries);
                if (kv.Length != 2 || !long.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out long value))
                {
                    continue;
                }

                switch (kv[0])
                {
                    case "gfx_target_version": gfx = (int)value; break;
                    case "vendor_id": vendor = $"0x{value:x4}"; break;
                    case "device_id": device = $"0x{value:x4}"; break;
                }
            }

            if (gfx > 0)
            {
                nodes.Add(new GpuInfo(node, gfx, vendor, device));
            }
        }

        return nodes;
    }

    private List<GpuInfo> ReadDrmDevices()
    {
        var devices = new List<GpuInfo>();
        foreach (string card in Root.List("/sys/class/drm", "card*"))
        {
            string name = Path.GetFileName(card);
            if (name.Contains('-'))
            {
                continue; // connectors such as card0-DP-1
            }

            string vendor = (Root.ReadValue(card + "/device/vendor") ?? "").ToLowerInvariant();
            string device = (Root.ReadValue(card + "/device/device") ?? "").ToLowerInvariant();
            if (vendor == AmdVendorId)
            {
                devices.Add(new GpuInfo(card, 0, vendor, device));
            }
        }

        return devices;
    }
}
