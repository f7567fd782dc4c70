using System.IO.MemoryMappedFiles;

namespace Halo.Core.Formats;

/// <summary>
/// A whole file mapped read-only into memory; <see cref="Pointer"/> stays valid until disposal. The page cache
/// backs it, so weights are loaded lazily by the OS and shared between processes.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private bool _disposed;

    private MappedFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* pointer, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        Pointer = pointer;
        Length = length;
    }

    public string Path { get; }

    public byte* Pointer { get; }

    public long Length { get; }

    public ReadOnlySpan<byte> Span(long offset, int length) =>
        offset >= 0 && length >= 0 && offset + length <= Length
            ? new ReadOnlySpan<byte>(Pointer + offset, length)
            : throw new ArgumentOutOfRangeException(nameof(offset));

    /// <summary>Maps <paramref name="path"/>; missing or unreadable files become <see cref="InvalidModelException"/>.</summary>
    public static MappedFile Open(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidModelException(path, $"cannot open the file: {e.Message}", e);
        }

        long length = stream.Length;
        if (length == 0)
        {
            // An empty file cannot be mapped; readers report it as truncated.
            stream.Dispose();
            return new MappedFile(path, null, null, null, 0);
        }

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            return new MappedFile(path, map, view, pointer + view.PointerOffset, length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw new InvalidModelException(path, $"cannot map the file: {e.Message}", e);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }

        _map?.Dispose();
    }
}
