namespace Halo.Installer.Doctor;

/// <summary>
/// The file system of the machine being checked: "/" for the live system, or a directory that stands in for
/// it (`--root`). Every read goes through here so that absolute paths, symlinks (absolute and relative) and
/// PATH lookups stay inside the root, the way a chroot would see them.
/// </summary>
public sealed class SystemRoot
{
    private const int MaxSymlinkHops = 40; // Linux's MAXSYMLINKS

    public SystemRoot(string path)
    {
        HostRoot = Path.GetFullPath(path).TrimEnd('/');
        IsLive = HostRoot.Length == 0;
    }

    public static SystemRoot Live { get; } = new("/");

    /// <summary>The root on the host; empty for the live system.</summary>
    public string HostRoot { get; }

    /// <summary>True when this is the running system, so live probes (systemctl, HTTP, rocminfo) make sense.</summary>
    public bool IsLive { get; }

    /// <summary>
    /// Maps an absolute path as the machine sees it to the path on the host. Under a fake root the symlinks
    /// are resolved first, so that a link to /usr/bin/x reads the root's file, never the host's.
    /// </summary>
    public string Host(string path) => IsLive ? Normalize(path) : Raw(Resolve(path) ?? path);

    /// <summary>Like <see cref="Host"/>, but a symlink in the last component is left alone (lstat semantics).</summary>
    private string HostNoFollow(string path)
    {
        if (IsLive)
        {
            return Normalize(path);
        }

        string normal = Normalize(path);
        int slash = normal.LastIndexOf('/');
        string parent = slash <= 0 ? "/" : Resolve(normal[..slash]) ?? normal[..slash];
        return Raw(Combine(parent, normal[(slash + 1)..]));
    }

    private string Raw(string path) => HostRoot + Normalize(path);

    public bool FileExists(string path) => File.Exists(Host(path));

    public bool DirectoryExists(string path) => Directory.Exists(Host(path));

    public bool Exists(string path) => Path.Exists(Host(path)) || IsSymlink(path);

    public string? ReadText(string path)
    {
        try
        {
            return File.ReadAllText(Host(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Reads a one-value file such as a sysfs attribute, trimmed; null when absent or unreadable.</summary>
    public string? ReadValue(string path) => ReadText(path)?.Trim();

    /// <summary>The first bytes of a file (the kernel reads 256 to find `#!` or the ELF magic).</summary>
    public byte[]? ReadHead(string path, int count = 256)
    {
        try
        {
            using var stream = new FileStream(Host(path), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
            var buffer = new byte[count];
            int read = stream.ReadAtLeast(buffer, count, throwOnEndOfStream: false);
            return buffer[..read];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Entries of a directory as machine paths, sorted; empty when it does not exist.</summary>
    public IReadOnlyList<string> List(string directory, string pattern = "*")
    {
        string host = Host(directory);
        if (!Directory.Exists(host))
        {
            return [];
        }

        try
        {
            var names = new List<string>();
            foreach (string entry in Directory.EnumerateFileSystemEntries(host, pattern))
            {
                names.Add(Combine(directory, Path.GetFileName(entry)));
            }

            names.Sort(StringComparer.Ordinal);
            return names;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    public bool IsSymlink(string path)
    {
        try
        {
            return new FileInfo(HostNoFollow(path)).LinkTarget is not null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The text of a symlink (not resolved), e.g. /proc/PID/exe; null when not a link.</summary>
    public string? ReadLink(string path)
    {
        try
        {
            return new FileInfo(HostNoFollow(path)).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// Resolves every symlink in <paramref name="path"/> inside the root, like realpath(3) in a chroot:
    /// absolute targets restart at the root, `..` never climbs above it. Null on a loop.
    /// A missing component ends resolution there (the rest is appended as written).
    /// </summary>
    public string? Resolve(string path)
    {
        var pending = new Stack<string>(SplitReversed(Normalize(path)));
        var resolved = new List<string>();
        int hops = 0;
        while (pending.Count > 0)
        {
            string part = pending.Pop();
            if (part == "." || part.Length == 0)
            {
                continue;
            }

            if (part == "..")
            {
                if (resolved.Count > 0)
                {
                    resolved.RemoveAt(resolved.Count - 1);
                }

                continue;
            }

            string candidate = "/" + string.Join('/', resolved.Append(part));
            string? target = RawLinkTarget(candidate);
            if (target is null)
            {
                resolved.Add(part);
                continue;
            }

            if (++hops > MaxSymlinkHops)
            {
                return null;
            }

            if (target.StartsWith('/'))
            {
                resolved.Clear();
            }

            foreach (string next in SplitReversed(target))
            {
                pending.Push(next);
            }
        }

        return "/" + string.Join('/', resolved);
    }

    /// <summary>
    /// Finds a command the way execvp does: a name with a slash is taken as is, otherwise the first
    /// executable regular file in <paramref name="searchPath"/>. Returns the machine path (unresolved).
    /// </summary>
    public string? Which(string command, IEnumerable<string> searchPath)
    {
        if (command.Contains('/'))
        {
            return command.StartsWith('/') ? command : null;
        }

        foreach (string dir in searchPath)
        {
            if (!dir.StartsWith('/'))
            {
                continue;
            }

            string candidate = Combine(dir, command);
            string? real = Resolve(candidate);
            if (real is not null && File.Exists(Host(real)) && IsExecutable(real))
            {
                return candidate;
            }
        }

        return null;
    }

    public bool IsExecutable(string path)
    {
        try
        {
            UnixFileMode mode = ModeOfHostPath(Host(path));
            return (mode & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private string? RawLinkTarget(string path)
    {
        try
        {
            return new FileInfo(Raw(path)).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The permission bits of a file under the root (lstat is not needed: links are resolved inside the root).</summary>
    public UnixFileMode Mode(string path) => ModeOfHostPath(Host(path));

    /// <summary>The CLI runs on Linux only; the guard tells the platform analyzer so.</summary>
    public static UnixFileMode ModeOfHostPath(string hostPath) =>
        OperatingSystem.IsWindows() ? throw new PlatformNotSupportedException() : File.GetUnixFileMode(hostPath);

    public static void SetModeOfHostPath(string hostPath, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException();
        }

        File.SetUnixFileMode(hostPath, mode);
    }

    public static string Combine(string directory, string name) =>
        directory.EndsWith('/') ? directory + name : directory + "/" + name;

    private static string Normalize(string path)
    {
        string absolute = path.StartsWith('/') ? path : "/" + path;
        var parts = new List<string>();
        foreach (string part in absolute.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }

                continue;
            }

            parts.Add(part);
        }

        return "/" + string.Join('/', parts);
    }

    private static IEnumerable<string> SplitReversed(string path)
    {
        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        Array.Reverse(parts);
        return parts;
    }
}
