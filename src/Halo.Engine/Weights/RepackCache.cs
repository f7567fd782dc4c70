using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Halo.Core.Formats;

namespace Halo.Engine.Weights;

/// <summary>
/// Repacked weights kept on disk, so that a warm start maps them from the page cache instead of writing ~0.85 GiB
/// of fresh memory (on the VMs this was measured on, first-touching fresh pages costs ~0.35 ms per MiB and was
/// most of the load time). One file per (model file, part): a 4 KiB header then the arena's bytes exactly.
/// <list type="bullet">
/// <item>Keyed by the model file's identity (full path, length, modification time), its tensor table and a
/// sample of every tensor (see <see cref="FileKey"/>), the part, and the engine build (its module version id), so
/// a changed model or a changed layout never reads a stale copy.</item>
/// <item>Verified on every open: magic, version, key, lengths and a header hash (XxHash64); and an XxHash3 of every 16 MiB
/// chunk (in parallel) on the first open in each boot and after any change to the file (see
/// <see cref="VerifiedThisBoot"/>). Anything wrong: one warning, the file is deleted, the caller repacks.</item>
/// <item>Written to a temporary file, flushed to disk, then renamed (atomic); skipped with a warning when the
/// disk has less than the file's size plus 1 GiB free; any write failure deletes the temporary file, warns and
/// changes nothing else. The 4 most recently used files are kept.</item>
/// </list>
/// </summary>
public sealed unsafe partial class RepackCache
{
    private const int HeaderBytes = 4096;
    private const long ChunkBytes = 16 << 20;
    private const int SampledBytes = 4096;
    private const int Version = 2;
    private const int KeepFiles = 4;
    private const long FreeMargin = 1L << 30;
    private const string Extension = ".repack";
    private const string VerifiedSuffix = ".verified";
    private static readonly Lazy<string> BootId = new(() => File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim());
    private static readonly byte[] Magic = "HALORPK\0"u8.ToArray();
    private static readonly ConditionalWeakTable<IModelSource, StrongBox<RepackKey?>> FileKeys = new();

    private readonly Action<string> _warn;
    private readonly Func<string, long> _freeBytes;

    public RepackCache(string directory, Action<string>? warn = null, Func<string, long>? freeBytes = null)
    {
        Directory = directory;
        _warn = warn ?? (_ => { });
        _freeBytes = freeBytes ?? (path => new DriveInfo(path).AvailableFreeSpace);
    }

    public string Directory { get; }

    /// <summary>
    /// The cache directory: <paramref name="configured"/> (config <c>model.repack_cache</c>, environment
    /// <c>HALO_MODEL_REPACK_CACHE</c>: a directory, or <c>off</c>) when set, else systemd's <c>CACHE_DIRECTORY</c> or
    /// <c>STATE_DIRECTORY</c> (under <c>repack/</c>), else <c>$XDG_CACHE_HOME/halo/repack</c> or
    /// <c>~/.cache/halo/repack</c>; null when off or no location is known.
    /// </summary>
    public static string? DefaultDirectory(string? configured, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (configured is { Length: > 0 })
        {
            return configured == "off" ? null : configured;
        }

        foreach (string systemd in (string[])["CACHE_DIRECTORY", "STATE_DIRECTORY"])
        {
            if (environment(systemd) is { Length: > 0 } dirs)
            {
                return Path.Combine(dirs.Split(':')[0], "repack");
            }
        }

        if (environment("XDG_CACHE_HOME") is { Length: > 0 } xdg)
        {
            return Path.Combine(xdg, "halo", "repack");
        }

        return environment("HOME") is { Length: > 0 } home ? Path.Combine(home, ".cache", "halo", "repack") : null;
    }

    /// <summary>The cache key of one part of a model file, or null when the source is not a plain file.</summary>
    public static RepackKey? Key(IModelSource source, string part)
    {
        if (FileKeys.GetValue(source, FileKey).Value is not { } file)
        {
            return null;
        }

        return RepackKey.Of(writer =>
        {
            writer.Write($"{Version}\n{part}\n{typeof(RepackCache).Module.ModuleVersionId}\n");
            writer.Write(file.Low);
            writer.Write(file.High);
        });
    }

    /// <summary>The model file's part of every key, computed once per opened source rather than once per part: its
    /// identity (full path, length, modification time), its tensor table (names, types, shapes, sizes) and an XxHash64
    /// of the first 4 KiB of every tensor's data, read through the source's own mapping. A sample of each tensor tells
    /// two models of one shape apart where a hash of the file's first 32 MiB (read with read(2)) saw only the metadata
    /// and the first tensors, and cost a warm start 15-35 ms on its critical path. All of it is written out and hashed
    /// at once (<see cref="RepackKey.Of"/>): fed to XxHash128 piece by piece, and the samples to XxHash3, it took the
    /// daemon's start 15-30 ms, as ReadyToRun leaves System.IO.Hashing's vectorised code to the JIT, whose first tier
    /// ran those thousands of small calls. The samples through XxHash64's scalar code take under a millisecond.</summary>
    private static StrongBox<RepackKey?> FileKey(IModelSource source)
    {
        var file = new FileInfo(source.Path);
        if (!file.Exists)
        {
            return new StrongBox<RepackKey?>(null);
        }

        return new StrongBox<RepackKey?>(RepackKey.Of(writer =>
        {
            writer.Write($"{file.FullName}\n{file.Length}\n{file.LastWriteTimeUtc.Ticks}\n");
            foreach (TensorView tensor in source.Tensors)
            {
                writer.Write(tensor.Name);
                writer.Write((long)tensor.Type);
                writer.Write(tensor.ByteLength);
                foreach (long dimension in tensor.Shape)
                {
                    writer.Write(dimension);
                }

                writer.Write(XxHash64.HashToUInt64(new ReadOnlySpan<byte>(tensor.Data, (int)Math.Min(tensor.ByteLength, SampledBytes))));
            }
        }));
    }

    private string FileFor(RepackKey key) => Path.Combine(Directory, key + Extension);

    /// <summary>
    /// The cached bytes of <paramref name="key"/> as a read-only arena of exactly <paramref name="bytes"/> bytes,
    /// or null on a miss or a bad file (which is reported and deleted).
    /// </summary>
    public WeightArena? TryOpen(RepackKey key, long bytes)
    {
        string path = FileFor(key);
        if (!OperatingSystem.IsLinux() || !File.Exists(path))
        {
            return null;
        }

        MappedCacheFile? mapped = null;
        try
        {
            mapped = MappedCacheFile.Open(path);
            string? problem = CheckHeader(mapped, key, bytes) ?? (VerifiedThisBoot(path) ? null : CheckPayload(mapped, bytes));
            if (problem is null)
            {
                File.SetLastWriteTimeUtc(path, DateTime.UtcNow); // most recently used
                RecordVerified(path);
                return WeightArena.Over(mapped.Pointer + HeaderBytes, bytes, mapped);
            }

            mapped.Dispose();
            _warn($"repack cache {path} is unusable ({problem}); deleting it and repacking");
            TryDelete(path);
            TryDelete(path + VerifiedSuffix);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            mapped?.Dispose();
            _warn($"repack cache {path} cannot be read ({e.Message}); repacking");
        }

        return null;
    }

    /// <summary>
    /// Whether the payload of <paramref name="path"/> was checked since the machine booted and the file has not
    /// changed since (same length and modification time as recorded right after that check). Hashing the payload is
    /// most of a warm start's load (~0.8 GiB for a 2B model, ~50 ms of CPU); within one boot a file that kept its
    /// length and time still holds the bytes that were checked, and a file rewritten in place or replaced gets a new
    /// time (the kernel's, never equal to the one the cache set to 100 ns), so only that is checked again.
    /// </summary>
    private static bool VerifiedThisBoot(string path)
    {
        try
        {
            return File.Exists(path + VerifiedSuffix) && File.ReadAllText(path + VerifiedSuffix) == VerifiedRecord(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Notes that <paramref name="path"/> passed its check in this boot (a record that cannot be written only
    /// means the next start checks it again).</summary>
    private static void RecordVerified(string path)
    {
        try
        {
            File.WriteAllText(path + VerifiedSuffix, VerifiedRecord(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // the next open verifies the payload again
        }
    }

    // boot id, length, modification time: a partly written record never matches.
    private static string VerifiedRecord(string path)
    {
        var file = new FileInfo(path);
        return $"{BootId.Value}\n{file.Length}\n{file.LastWriteTimeUtc.Ticks}\n";
    }

    private static string? CheckHeader(MappedCacheFile file, RepackKey key, long bytes)
    {
        if (file.Length != HeaderBytes + bytes)
        {
            return $"{file.Length} bytes, expected {HeaderBytes + bytes}";
        }

        ReadOnlySpan<byte> header = new(file.Pointer, HeaderBytes);
        int chunks = (int)((bytes + ChunkBytes - 1) / ChunkBytes);
        int used = HeaderLength(chunks);
        if (used + 8 > HeaderBytes || !header[..8].SequenceEqual(Magic) || BinaryPrimitives.ReadInt32LittleEndian(header[8..]) != Version
            || BinaryPrimitives.ReadUInt64LittleEndian(header[used..]) != XxHash64.HashToUInt64(header[..used]))
        {
            return "bad header";
        }

        if (RepackKey.Read(header[16..]) != key || BinaryPrimitives.ReadInt64LittleEndian(header[32..]) != bytes)
        {
            return "header of another model";
        }

        return null;
    }

    private static string? CheckPayload(MappedCacheFile file, long bytes)
    {
        int chunks = (int)((bytes + ChunkBytes - 1) / ChunkBytes);
        int bad = 0;
        byte* payload = file.Pointer + HeaderBytes;
        long headerAddress = (long)file.Pointer;
        Parallel.For(0, chunks, c =>
        {
            long start = c * ChunkBytes, length = Math.Min(ChunkBytes, bytes - start);
            ulong expected = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>((byte*)headerAddress + 48 + c * 8, 8));
            if (XxHash3.HashToUInt64(new ReadOnlySpan<byte>(payload + start, (int)length)) != expected)
            {
                Interlocked.Increment(ref bad);
            }
        });
        return bad == 0 ? null : $"{bad} of {chunks} chunks fail their checksum";
    }

    // magic 8, version 4, reserved 4, key 16, payload length 8, chunk size 8, chunk hashes 8 each; then its own hash
    private static int HeaderLength(int chunks) => 48 + chunks * 8;

    /// <summary>Writes <paramref name="bytes"/> bytes at <paramref name="data"/> as the entry of <paramref name="key"/>.
    /// Never throws for I/O trouble: it warns and leaves no partial file.</summary>
    public void Store(RepackKey key, byte* data, long bytes)
    {
        int chunks = (int)((bytes + ChunkBytes - 1) / ChunkBytes);
        if (!OperatingSystem.IsLinux() || HeaderLength(chunks) + 8 > HeaderBytes)
        {
            return; // mapped back only on Linux; larger than this format describes (> 8 GiB): not cached
        }

        string path = FileFor(key);
        string temporary = $"{path}.{Environment.ProcessId}-{Guid.NewGuid():N}.tmp"; // writers never share one
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            long free = _freeBytes(Directory);
            if (free < HeaderBytes + bytes + FreeMargin)
            {
                _warn($"repack cache not written: {Directory} has {free >> 20} MiB free, it needs {(HeaderBytes + bytes + FreeMargin) >> 20} MiB (the file plus 1 GiB to spare)");
                return;
            }

            var header = new byte[HeaderBytes];
            Magic.CopyTo(header, 0);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), Version);
            key.Write(header.AsSpan(16));
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(32), bytes);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(40), ChunkBytes);
            for (int c = 0; c < chunks; c++)
            {
                long start = c * ChunkBytes;
                ulong h = XxHash3.HashToUInt64(new ReadOnlySpan<byte>(data + start, (int)Math.Min(ChunkBytes, bytes - start)));
                BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(48 + c * 8), h);
            }

            int used = HeaderLength(chunks);
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(used), XxHash64.HashToUInt64(header.AsSpan(0, used)));
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                stream.Write(header);
                for (long offset = 0; offset < bytes; offset += ChunkBytes)
                {
                    stream.Write(new ReadOnlySpan<byte>(data + offset, (int)Math.Min(ChunkBytes, bytes - offset)));
                }

                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
            Evict();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
            _warn($"repack cache not written to {Directory}: {e.Message}");
        }
    }

    /// <summary>Keeps the most recently used entries, and drops temporary files a killed writer left.</summary>
    private void Evict()
    {
        var entries = new DirectoryInfo(Directory).GetFiles("*" + Extension);
        Array.Sort(entries, (a, b) => b.LastWriteTimeUtc.CompareTo(a.LastWriteTimeUtc));
        for (int i = KeepFiles; i < entries.Length; i++)
        {
            TryDelete(entries[i].FullName);
            TryDelete(entries[i].FullName + VerifiedSuffix);
        }

        foreach (FileInfo stale in new DirectoryInfo(Directory).GetFiles("*" + Extension + ".*.tmp"))
        {
            if (stale.LastWriteTimeUtc < DateTime.UtcNow.AddHours(-1))
            {
                TryDelete(stale.FullName);
            }
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a file we cannot delete is simply left; it is verified before any use
        }
    }

    /// <summary>A cache file mapped read-only with its pages populated in one call.</summary>
    internal sealed partial class MappedCacheFile : IDisposable
    {
        private const int ProtRead = 1, MapPrivate = 2, MapPopulate = 0x8000;

        private MappedCacheFile(byte* pointer, long length)
        {
            Pointer = pointer;
            Length = length;
        }

        public byte* Pointer { get; private set; }

        public long Length { get; }

        public static MappedCacheFile Open(string path)
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
            long length = RandomAccess.GetLength(handle);
            if (length == 0)
            {
                return new MappedCacheFile(null, 0);
            }

            void* p = Mmap(null, (nuint)length, ProtRead, MapPrivate | MapPopulate, (int)handle.DangerousGetHandle(), 0);
            if (p == (void*)-1)
            {
                throw new IOException($"cannot map {path} (errno {Marshal.GetLastPInvokeError()})");
            }

            return new MappedCacheFile((byte*)p, length);
        }

        public void Dispose()
        {
            if (Pointer != null)
            {
                _ = Munmap(Pointer, (nuint)Length);
                Pointer = null;
            }
        }

        [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
        private static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

        [LibraryImport("libc", EntryPoint = "munmap")]
        private static partial int Munmap(void* address, nuint length);
    }
}
