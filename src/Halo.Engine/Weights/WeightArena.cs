using System.Runtime.InteropServices;

namespace Halo.Engine.Weights;

/// <summary>
/// One block of fresh anonymous memory that repacked weights are carved from: it arrives zeroed from the kernel
/// (padding rows need no clearing) and untouched, so each page is written exactly once, by the repack, and the
/// block starts on a 2 MiB boundary so that transparent huge pages can back it (<see cref="UseHugePages"/>).
/// Not thread-safe while carving; the slices are independent once taken.
/// </summary>
public sealed unsafe partial class WeightArena : IDisposable
{
    private const int HugePage = 2 << 20;
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20, MadvHugePage = 14;

    private byte* _base;
    private readonly byte* _mappedStart;
    private readonly nuint _mappedBytes;
    private readonly bool _mapped;
    private long _used;

    public WeightArena(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Capacity = bytes;
        nuint size = (nuint)Math.Max(bytes, 1);
        if (OperatingSystem.IsLinux())
        {
            // Over-map by one huge page so that the used range can start on a 2 MiB boundary.
            _mappedBytes = size + HugePage;
            void* p = Mmap(null, _mappedBytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
            if (p == (void*)-1)
            {
                throw new OutOfMemoryException($"cannot reserve {bytes} bytes for the model weights");
            }

            _mapped = true;
            _base = (byte*)(((nuint)p + HugePage - 1) & ~(nuint)(HugePage - 1));
            _mappedStart = (byte*)p;
            if (UseHugePages)
            {
                // Advice only: without it (THP off, old kernel) the memory is the same, in 4 KiB pages.
                _ = Madvise(_base, size, MadvHugePage);
            }
        }
        else
        {
            _base = (byte*)NativeMemory.AlignedAlloc(size, 64);
            NativeMemory.Clear(_base, size);
        }
    }

    public long Capacity { get; }

    /// <summary>
    /// Whether to ask for transparent huge pages (MADV_HUGEPAGE). Off by default, from measurement: on the
    /// virtual machines this was tuned on, the host reclaims free 2 MiB blocks (free page reporting), so the
    /// first touch of fresh huge pages after a few idle seconds cost ~1.2 s per 540 MiB against ~0.19 s in
    /// 4 KiB pages. On bare metal huge pages load faster and cut TLB misses; enable them there.
    /// </summary>
    public static bool UseHugePages { get; set; }

    /// <summary>Bytes a slice of <paramref name="bytes"/> takes from an arena (its size rounded up to 64).</summary>
    public static long SliceBytes(long bytes) => (bytes + 63) & ~63L;

    /// <summary>The next <paramref name="bytes"/> bytes, 64-byte aligned and zeroed.</summary>
    public byte* Take(long bytes)
    {
        ObjectDisposedException.ThrowIf(_base == null, this);
        long size = SliceBytes(bytes);
        if (size > Capacity - _used)
        {
            throw new InvalidOperationException($"weight arena of {Capacity} bytes cannot give {size} more ({_used} used)");
        }

        byte* slice = _base + _used;
        _used += size;
        return slice;
    }

    public void Dispose()
    {
        if (_base == null)
        {
            return;
        }

        if (_mapped)
        {
            _ = Munmap(_mappedStart, _mappedBytes);
        }
        else
        {
            NativeMemory.AlignedFree(_base);
        }

        _base = null;
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* address, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
