using System.Diagnostics;
using Halo.Core.Formats;
using Halo.Installer.Models;

namespace Halo.Installer.Convert;

public sealed record ConvertOptions
{
    /// <summary>Greedy tokens both models must agree on after conversion; 0 skips the engine check.</summary>
    public int CheckTokens { get; init; } = 8;

    public int Threads { get; init; } = Environment.ProcessorCount;
}

/// <param name="Tokens">The greedy tokens both models produced, or null when the engine check was skipped.</param>
public sealed record ConvertResult(
    string Output, long Size, string SourceFormat, int Tensors, long TensorBytes, IReadOnlyList<int>? Tokens, TimeSpan WriteTime, TimeSpan VerifyTime);

/// <summary>The converted file did not read back as the same model; nothing was written under the output name.</summary>
public sealed class ConversionFailedException(string message) : Exception(message);

/// <summary>
/// <c>halo convert</c> as a library: GGUF or safetensors in, <c>.h1b</c> out, and proof that nothing changed.
/// <list type="number">
/// <item>open the input with the format reader (safetensors bf16 master weights are ternarized on load);</item>
/// <item>write <c>OUT.partial</c> with <see cref="H1bWriter"/>, counting bytes for the progress bar, then fsync;</item>
/// <item>open it again (the reader checks every section and tensor checksum) and compare config, tokenizer and
///   every tensor byte for byte with the input (<see cref="ModelComparison"/>);</item>
/// <item>run both through the CPU engine and require the same greedy tokens (<see cref="GreedyCheck"/>);</item>
/// <item>only then rename to OUT. Any failure removes the partial file.</item>
/// </list>
/// </summary>
public static class ModelConverter
{
    public static ConvertResult Convert(string input, string output, ConvertOptions options, IProgress<DownloadProgress>? progress, Action<string>? log,
        CancellationToken cancellationToken)
    {
        string target = Path.GetFullPath(output);
        string partial = target + ".partial";
        string label = Path.GetFileName(target);
        using IModelSource source = ModelFile.Open(input);
        if (source is SafetensorsModel safetensors)
        {
            foreach (string warning in safetensors.Warnings)
            {
                log?.Invoke(warning);
            }
        }

        long tensorBytes = 0;
        foreach (TensorView tensor in source.Tensors)
        {
            tensorBytes += tensor.ByteLength;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        try
        {
            var clock = Stopwatch.StartNew();
            progress?.Report(new DownloadProgress(label, DownloadPhase.Downloading, 0, tensorBytes));
            using (var file = new FileStream(partial, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20))
            {
                var counting = new CountingStream(file, written =>
                    progress?.Report(new DownloadProgress(label, DownloadPhase.Downloading, Math.Min(written, tensorBytes), tensorBytes)));
                H1bWriter.Write(source, counting);
                file.Flush(flushToDisk: true);
            }

            TimeSpan writeTime = clock.Elapsed;
            cancellationToken.ThrowIfCancellationRequested();

            clock.Restart();
            IReadOnlyList<int>? tokens;
            using (IModelSource converted = ModelFile.Open(partial))
            {
                IReadOnlyList<string> differences = ModelComparison.Compare(source, converted,
                    new SynchronousProgress<long>(done => progress?.Report(new DownloadProgress(label, DownloadPhase.Verifying, done, tensorBytes))),
                    cancellationToken);
                if (differences.Count > 0)
                {
                    throw new ConversionFailedException(
                        $"{label} does not read back as {Path.GetFileName(input)}: {differences.Count} differences, first: {string.Join("; ", differences.Take(5))}");
                }

                tokens = options.CheckTokens > 0 ? CompareGreedyTokens(source, converted, options, log) : null;
            }

            TimeSpan verifyTime = clock.Elapsed;
            AtomicFile.Publish(partial, target);
            progress?.Report(new DownloadProgress(label, DownloadPhase.Done, tensorBytes, tensorBytes));
            return new ConvertResult(target, new FileInfo(target).Length, source.Format, source.Tensors.Count, tensorBytes, tokens, writeTime, verifyTime);
        }
        catch
        {
            File.Delete(partial);
            throw;
        }
    }

    private static IReadOnlyList<int>? CompareGreedyTokens(IModelSource source, IModelSource converted, ConvertOptions options, Action<string>? log)
    {
        IReadOnlyList<int> expected;
        try
        {
            expected = GreedyCheck.Run(source, options.CheckTokens, options.Threads);
        }
        catch (Exception ex) when (ex is InvalidModelException or NotSupportedException)
        {
            // The tensors already matched bit for bit; an engine that cannot run this model cannot run either copy.
            log?.Invoke($"greedy-token check skipped: the engine cannot run {Path.GetFileName(source.Path)} ({ex.Message})");
            return null;
        }

        IReadOnlyList<int> actual = GreedyCheck.Run(converted, options.CheckTokens, options.Threads);
        if (!expected.SequenceEqual(actual))
        {
            throw new ConversionFailedException(
                $"greedy tokens differ after conversion: source [{string.Join(", ", expected)}], converted [{string.Join(", ", actual)}]");
        }

        return expected;
    }

    /// <summary>A pass-through seekable stream that reports the highest byte position written (the writer seeks back
    /// to 0 at the end to write its preamble, so bytes written are not monotone).</summary>
    private sealed class CountingStream(Stream inner, Action<long> onWrite) : Stream
    {
        private long _highest;

        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => inner.CanSeek;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => inner.Length;

        public override long Position
        {
            get => inner.Position;
            set => inner.Position = value;
        }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value) => inner.SetLength(value);

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            if (inner.Position > _highest)
            {
                _highest = inner.Position;
                onWrite(_highest);
            }
        }
    }
}
