using System.Buffers;
using System.Security.Cryptography;

namespace Halo.Installer.Models;

/// <summary>SHA-256 of files on disk, streamed in 1 MiB reads, with progress for multi-GB models.</summary>
public static class FileHash
{
    private const int BufferSize = 1 << 20;

    /// <param name="progress">Receives the bytes hashed so far after each read.</param>
    public static async Task<string> Sha256Async(string path, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            await using var stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read,
                Options = FileOptions.SequentialScan | FileOptions.Asynchronous,
                BufferSize = 0,
            });
            long done = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                done += read;
                progress?.Report(done);
            }

            return System.Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
