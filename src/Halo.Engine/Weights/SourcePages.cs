using System.Runtime.InteropServices;
using Halo.Core.Formats;

namespace Halo.Engine.Weights;

/// <summary>
/// Drops this process's mapping of model-file pages that were read once (to repack them) and are not needed
/// again, so resident memory holds the repacked copy and not both. The data stays in the page cache (a warm
/// reload is still fast) and any later read simply faults the page back in. Only for GGUF sources, which
/// <see cref="GgufModel"/> maps read-only from the file; never for memory the source owns.
/// </summary>
internal static unsafe partial class SourcePages
{
    private const int MadvDontNeed = 4;

    public static bool IsFileMapped(IModelSource source) => source.Format == "gguf" && OperatingSystem.IsLinux();

    public static void Release(IModelSource source, TensorView tensor) => Release(source, (nint)tensor.Data, tensor.ByteLength);

    /// <summary>Drops the whole pages inside [start, start + length) of a mapped source.</summary>
    public static void Release(IModelSource source, nint address, long length)
    {
        if (!IsFileMapped(source))
        {
            return;
        }

        long page = Environment.SystemPageSize;
        long start = ((long)address + page - 1) / page * page;
        long end = ((long)address + length) / page * page;
        if (end > start)
        {
            // Advice only: a failure leaves the pages mapped, which costs memory but nothing else.
            _ = Madvise((void*)start, (nuint)(end - start), MadvDontNeed);
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
