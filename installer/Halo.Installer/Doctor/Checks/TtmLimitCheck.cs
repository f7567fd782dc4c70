using System.Globalization;

namespace Halo.Installer.Doctor.Checks;

/// <summary>
/// `memory.ttm`: how much of the unified memory the GPU may map (GTT). The TTM default is half the RAM; a
/// BitNet model plus KV cache on Strix Halo wants most of it, so Halo recommends `ttm.pages_limit` (4 KiB
/// pages) at the RAM minus a reserve for the OS. `amdgpu.gttsize` is deprecated in favour of it.
/// </summary>
public sealed class TtmLimitCheck : FileCheck
{
    public const string SysfsPagesLimit = "/sys/module/ttm/parameters/pages_limit";
    public const long PageSize = 4096;

    public override string Id => "memory.ttm";

    public override string Title => "GPU memory limit (TTM)";

    /// <summary>The recommended `ttm.pages_limit`: RAM less max(4 GiB, RAM/16), in 4 KiB pages.</summary>
    public static long RecommendedPages(long memoryBytes) =>
        (memoryBytes - Math.Max(4L << 30, memoryBytes / 16)) / PageSize;

    /// <summary>The value of `key=` on the kernel command line, last one winning; null when absent.</summary>
    public static string? CommandLineValue(IReadOnlyList<string> commandLine, string key)
    {
        string? value = null;
        foreach (string word in commandLine)
        {
            if (word.StartsWith(key + "=", StringComparison.Ordinal))
            {
                value = word[(key.Length + 1)..];
            }
        }

        return value;
    }

    /// <summary>Whether a limit of <paramref name="pages"/> suits a machine with <paramref name="memoryBytes"/>: at least 3/4 of the RAM, at most all of it.</summary>
    public static bool IsAdequate(long pages, long memoryBytes) =>
        pages * PageSize <= memoryBytes && pages * 4 >= memoryBytes / PageSize * 3;

    protected override CheckResult Run(DoctorContext context)
    {
        Machine machine = context.Machine;
        if (!machine.HasStrixHalo)
        {
            return Skip("no Strix Halo GPU: the GTT/TTM limit does not matter for CPU serving");
        }

        long memory = machine.MemoryBytes;
        if (memory <= 0)
        {
            return Warn("MemTotal unreadable (/proc/meminfo)", "check that /proc is mounted");
        }

        long recommended = RecommendedPages(memory);
        string setIt = $"sudo halo provision (asks before it adds ttm.pages_limit={recommended} to the kernel command line), then reboot";
        string? cmdlinePages = CommandLineValue(machine.KernelCommandLine, "ttm.pages_limit");
        string? gttsize = CommandLineValue(machine.KernelCommandLine, "amdgpu.gttsize");
        string? sysfs = context.Root.ReadValue(SysfsPagesLimit);

        // The module parameter is what the kernel uses; the command line says what was asked at boot.
        long pages = ParsePages(sysfs) ?? ParsePages(cmdlinePages) ?? memory / 2 / PageSize;
        string source = ParsePages(sysfs) is not null ? SysfsPagesLimit : cmdlinePages is not null ? "ttm.pages_limit on the command line" : "the kernel default (half the RAM)";
        string limit = $"{Gib(pages * PageSize)} of {Gib(memory)} GiB RAM ({pages} pages, {source})";

        if (pages * PageSize > memory)
        {
            return Warn($"GPU may map {limit}: more than the RAM, the OS can be starved", setIt);
        }

        if (pages * 4 < memory / PageSize * 3)
        {
            return Warn($"GPU may map only {limit}; large models and KV caches will not fit", setIt);
        }

        if (gttsize is not null)
        {
            return Warn($"GPU may map {limit}, but amdgpu.gttsize={gttsize} is set, which is deprecated", $"replace amdgpu.gttsize with ttm.pages_limit={recommended} on the kernel command line");
        }

        return Ok($"GPU may map {limit}");
    }

    private static long? ParsePages(string? text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long pages) && pages > 0 ? pages : null;

    private static string Gib(long bytes) => (bytes / (double)(1L << 30)).ToString("0.0", CultureInfo.InvariantCulture);
}
