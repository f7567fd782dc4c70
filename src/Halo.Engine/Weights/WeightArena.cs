using System.Runtime.InteropServices;

namespace Halo.Engine.Weights;

/// <summary>
/// One block of fresh anonymous memory that repacked weights are carved from: it arrives zeroed from the kernel
/// (padding rows need no clearing) and untouched, so each page is written exactly once, by the repack.
/// Transparent huge pages are deliberately not requested: on the virtual machines this was measured on, the host
/// reclaims free 2 MiB blocks (free page reporting), and the first touch of fresh huge pages after a few idle
/// seconds cost ~1.2 s per 540 MiB against ~0.19 s in 4 KiB pages.
/// Not thread-safe while carving; the slices are independent once taken.
/// </summary>
public sealed unsafe partial class WeightArena : IDisposable
{
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20;

    private byte* _base;
    private readonly nuint _mappedBytes;
    private readonly bool _mapped;
    private readonly IDisposable? _owner;
    private long _used;

    // An arena over memory someone else owns (a mapped cache file): read-only, carved the same way, and disposing
    // it disposes the owner.
    private WeightArena(byte* memory, long bytes, IDisposable owner)
    {
        _base = memory;
        Capacity = bytes;
        _owner = owner;
        IsReadOnly = true;
    }

    public WeightArena(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Capacity = bytes;
        nuint size = (nuint)Math.Max(bytes, 1);
        if (OperatingSystem.IsLinux())
        {
            _mappedBytes = size;
            void* p = Mmap(null, _mappedBytes, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
            if (p == (void*)-1)
            {
                throw new OutOfMemoryException($"cannot reserve {bytes} bytes for the model weights");
            }

            _mapped = true;
            _base = (byte*)p;
        }
        else
        {
            _base = (byte*)NativeMemory.AlignedAlloc(size, 64);
            NativeMemory.Clear(_base, size);
        }
    }

    public long Capacity { get; }

    /// <summary>True for an arena over a cache file: its slices hold repacked weights already and must not be written.</summary>
    public bool IsReadOnly { get; }

    /// <summary>The start of the arena; its first <see cref="Capacity"/> bytes are what the slices were carved from.</summary>
    public byte* Start => _base;

    /// <summary>An arena over <paramref name="bytes"/> bytes at <paramref name="memory"/>, which
    /// <paramref name="owner"/> keeps valid until it is disposed (with the arena).</summary>
    public static WeightArena Over(byte* memory, long bytes, IDisposable owner) => new(memory, bytes, owner);

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

        if (_owner is not null)
        {
            _owner.Dispose();
        }
        else if (_mapped)
        {
            _ = Munmap(_base, _mappedBytes);
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
}
