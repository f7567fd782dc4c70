using System.Runtime.InteropServices;

namespace Halo.Engine.Backends.Cpu;

/// <summary>
/// Zeroes fresh buffers without writing them: the whole pages inside are handed back to the kernel
/// (<c>madvise(MADV_DONTNEED)</c> on private anonymous memory, which any malloc heap is), so they read as zero and
/// take no memory until first written. The forward-pass buffers are sized for a full prefill chunk (tens of MiB for
/// a 2B model) and a typical step writes a few rows of them: clearing them by hand made all of it resident at start
/// and kept it in the idle daemon's RSS.
/// </summary>
internal static unsafe partial class ZeroPages
{
    private const int MadvDontNeed = 4;

    /// <summary>Makes [<paramref name="address"/>, + <paramref name="bytes"/>) read as zero, as
    /// <see cref="NativeMemory.Clear"/> does, for memory from <see cref="NativeMemory.AlignedAlloc"/>.</summary>
    public static void Clear(void* address, nuint bytes)
    {
        nuint page = (nuint)Environment.SystemPageSize;
        nuint start = ((nuint)address + page - 1) / page * page;
        nuint end = ((nuint)address + bytes) / page * page;
        if (!OperatingSystem.IsLinux() || end <= start || Madvise((void*)start, end - start, MadvDontNeed) != 0)
        {
            NativeMemory.Clear(address, bytes);
            return;
        }

        NativeMemory.Clear(address, start - (nuint)address);   // the partial pages at both ends
        NativeMemory.Clear((void*)end, (nuint)address + bytes - end);
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
