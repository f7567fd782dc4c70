using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Halo.Installer.Models;

/// <summary>
/// Durable replacement of files: data is flushed to disk before the rename that publishes it, and the
/// directory entry is flushed after, so a crash leaves either the old file or the new one, never a torn one.
/// </summary>
public static partial class AtomicFile
{
    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        string temp = path + ".tmp-" + Environment.ProcessId;
        try
        {
            using (SafeFileHandle handle = File.OpenHandle(temp, FileMode.Create, FileAccess.Write))
            {
                RandomAccess.Write(handle, content, 0);
                RandomAccess.FlushToDisk(handle);
            }

            Publish(temp, path);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Renames a fully written, flushed file to its final name and flushes the directory entry.</summary>
    public static void Publish(string temp, string path)
    {
        File.Move(temp, path, overwrite: true);
        FlushDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>fsync(2) on a directory, so that a rename in it survives a power cut (Linux; a no-op elsewhere).</summary>
    public static void FlushDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // open(2) of a directory read-only is allowed and gives an fd that fsync accepts.
        int fd = Open(dir, ReadOnly);
        if (fd < 0)
        {
            return;
        }

        _ = Fsync(fd);
        _ = Close(fd);
    }

    private const int ReadOnly = 0;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
