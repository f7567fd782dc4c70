using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Testing;
using Xunit.Abstractions;

namespace Halo.Reliability.Tests.Models;

/// <summary>
/// Broken model files (every header field, truncations, zero length, seeded byte flips, wrong .h1b checksums)
/// given to the real <c>halo run --model</c>: exit 1 with one clear line on stderr, never an unhandled
/// exception, never a hang. A wider seeded sweep runs through <see cref="ModelFile.Open"/> in-process, where
/// the only acceptable failure is <see cref="InvalidModelException"/>.
/// </summary>
public sealed class CorruptModelTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task HaloRun_CorruptGgufHeaderFields_ExitOneWithOneClearLine()
    {
        byte[] good = File.ReadAllBytes(Gguf());
        int firstTensor = IndexOf(good, "token_embd.weight"u8.ToArray(), IndexOf(good, "tokenizer.ggml.tokens"u8.ToArray(), 0) + 1);
        Assert.True(firstTensor > 0, "tensor infos not found");
        int tensorNameLength = firstTensor - 8;
        int dims = firstTensor + "token_embd.weight".Length;
        var cases = new List<(string Name, byte[] Bytes)>
        {
            ("zero-length", []),
            ("magic", Patch(good, 0, "GGUX"u8.ToArray())),
            ("version 0", PatchU32(good, 4, 0)),
            ("version 99", PatchU32(good, 4, 99)),
            ("tensor count 0", PatchU64(good, 8, 0)),
            ("tensor count huge", PatchU64(good, 8, ulong.MaxValue)),
            ("kv count 0", PatchU64(good, 16, 0)),
            ("kv count huge", PatchU64(good, 16, 1UL << 40)),
            ("first key length huge", PatchU64(good, 24, ulong.MaxValue / 2)),
            ("first value type 999", PatchU32(good, 24 + 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(good.AsSpan(24)), 999)),
            ("tensor name length huge", PatchU64(good, tensorNameLength, 1UL << 50)),
            ("tensor dim count 0", PatchU32(good, dims, 0)),
            ("tensor dim count 99", PatchU32(good, dims, 99)),
            ("tensor dim huge", PatchU64(good, dims + 4, 1UL << 62)),
            ("tensor type 255", PatchU32(good, dims + 4 + 16, 255)),
            ("tensor offset past the end", PatchU64(good, dims + 4 + 16 + 4, 1UL << 40)),
            ("tensor offset unaligned", PatchU64(good, dims + 4 + 16 + 4, 3)),
            ("truncated in the header", good[..100]),
            ("truncated in the tensor infos", good[..(dims + 2)]),
            ("truncated in the data", good[..(good.Length / 2)]),
            ("truncated by one byte", good[..^1]),
        };
        await RunAllAsync(cases, "gguf", allowServes: false);
    }

    [Fact]
    public async Task HaloRun_CorruptH1bFieldsAndChecksums_ExitOneWithOneClearLine()
    {
        byte[] good = File.ReadAllBytes(H1b());
        int sections = (int)BinaryPrimitives.ReadUInt32LittleEndian(good.AsSpan(12));
        int tableEnd = 16 + 32 * sections;
        var cases = new List<(string Name, byte[] Bytes)>
        {
            ("zero-length", []),
            ("magic", Patch(good, 0, "HALOH1C\0"u8.ToArray())),
            ("version 2", PatchU32(good, 8, 2)),
            ("section count 0", PatchU32(good, 12, 0)),
            ("section count 17", PatchU32(good, 12, 17)),
            ("preamble checksum", Flip(good, tableEnd)),
            ("truncated preamble", good[..20]),
            ("truncated by one byte", good[..^1]),
            ("truncated in the data", good[..(good.Length / 2)]),
        };
        for (int s = 0; s < sections; s++)
        {
            int entry = 16 + 32 * s;
            cases.Add(($"section {s} kind", PatchU32(good, entry, 99)));
            cases.Add(($"section {s} offset", PatchU64(good, entry + 8, 1UL << 40)));
            cases.Add(($"section {s} length", PatchU64(good, entry + 16, 1UL << 40)));
            cases.Add(($"section {s} checksum", Flip(good, entry + 24)));
            long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(good.AsSpan(entry + 8));
            long length = (long)BinaryPrimitives.ReadUInt64LittleEndian(good.AsSpan(entry + 16));
            cases.Add(($"section {s} first byte", Flip(good, (int)offset)));
            cases.Add(($"section {s} middle byte", Flip(good, (int)(offset + length / 2))));
        }

        // Every section-table field is under the preamble checksum; the header and vocabulary sections carry
        // their own, and each tensor its xxh64 (the tensor data section has none of its own).
        await RunAllAsync(cases, "h1b", allowServes: false);
    }

    [Fact]
    public async Task HaloRun_SeededByteFlips_ExitZeroOrOneNeverCrashOrHang()
    {
        var random = new Random(4242);
        var cases = new List<(string Name, byte[] Bytes)>();
        foreach ((string format, byte[] good) in new[] { ("gguf", File.ReadAllBytes(Gguf())), ("h1b", File.ReadAllBytes(H1b())) })
        {
            for (int i = 0; i < 8; i++)
            {
                int at = i < 4 ? random.Next(Math.Min(good.Length, 8192)) : random.Next(good.Length);
                cases.Add(($"{format} flip at {at}", Flip(good, at, (byte)(1 << random.Next(8)))));
            }
        }

        // A flip in GGUF weight bytes changes numbers, not structure: that file still runs (exit 0).
        await RunAllAsync(cases, "flip", allowServes: true);
    }

    /// <summary>Thousands of seeded flips and truncations through the readers themselves (no process per case):
    /// nothing but <see cref="InvalidModelException"/> may come out, and nothing may take more than 10 s.</summary>
    [Fact]
    public async Task ModelFileOpen_SeededCorruptions_OnlyInvalidModelException()
    {
        int count = Infrastructure.LongTests.Int("HALO_CORRUPT_CASES", 1500, 20_000);
        var random = new Random(777);
        int refused = 0, opened = 0;
        var clock = Stopwatch.StartNew();
        foreach ((string format, byte[] good) in new[] { ("gguf", File.ReadAllBytes(Gguf())), ("h1b", File.ReadAllBytes(H1b())) })
        {
            string path = _dir.File("sweep." + format);
            for (int i = 0; i < count; i++)
            {
                byte[] bytes = random.Next(10) == 0 ? good[..random.Next(good.Length)] : Flip(good, random.Next(random.Next(2) == 0 ? Math.Min(8192, good.Length) : good.Length), (byte)(1 + random.Next(255)));
                File.WriteAllBytes(path, bytes);
                var attempt = Task.Run(() =>
                {
                    using IModelSource source = ModelFile.Open(path);
                });
                try
                {
                    await attempt.WaitAsync(TimeSpan.FromSeconds(10));
                    opened++;
                }
                catch (InvalidModelException)
                {
                    refused++;
                }
                catch (TimeoutException)
                {
                    Assert.Fail($"{format} case {i}: ModelFile.Open hung");
                }
                catch (Exception e)
                {
                    Assert.Fail($"{format} case {i}: {e.GetType().Name}: {e.Message}");
                }
            }
        }

        output.WriteLine($"ModelFile.Open: {2 * count} corrupted files in {clock.Elapsed.TotalSeconds:F1} s: {refused} refused with InvalidModelException, {opened} opened (flips in unchecked GGUF weight bytes)");
    }

    private async Task RunAllAsync(List<(string Name, byte[] Bytes)> cases, string extension, bool allowServes)
    {
        var clock = Stopwatch.StartNew();
        var semaphore = new SemaphoreSlim(2);
        var results = await Task.WhenAll(cases.Select(async (c, i) =>
        {
            await semaphore.WaitAsync();
            try
            {
                string ext = extension == "flip" ? c.Name[..c.Name.IndexOf(' ')] : extension;
                string path = _dir.File($"case{i}.{ext}");
                await File.WriteAllBytesAsync(path, c.Bytes);
                return (c.Name, Result: await RunAsync(path));
            }
            finally
            {
                semaphore.Release();
            }
        }));

        foreach ((string name, (int exit, string stderr) result) in results)
        {
            string line = result.stderr.Trim();
            output.WriteLine($"{name,-32} exit {result.exit}  {line}");
        }

        output.WriteLine($"{cases.Count} corrupted files through halo run in {clock.Elapsed.TotalSeconds:F1} s");
        foreach ((string name, (int exit, string stderr) result) in results)
        {
            Assert.DoesNotContain("Unhandled exception", result.stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", result.stderr, StringComparison.Ordinal);
            if (allowServes && result.exit == 0)
            {
                continue;
            }

            Assert.True(result.exit == 1, $"{name}: exit {result.exit}, stderr: {result.stderr}");
            string[] lines = result.stderr.Trim().Split('\n');
            Assert.True(lines.Length == 1 && lines[0].Length > 10, $"{name}: expected one clear line, got: {result.stderr}");
        }
    }

    private static async Task<(int, string)> RunAsync(string model)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])[Path.Combine(AppContext.BaseDirectory, "halo.dll"), "run", "--model", model, "--tokens", "1,2", "--max-tokens", "1", "--threads", "1"])
        {
            info.ArgumentList.Add(a);
        }

        using Process p = Process.Start(info)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(RunTimeout);
        try
        {
            await p.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"halo run --model {model} hung for {RunTimeout}");
        }

        await stdout;
        return (p.ExitCode, await stderr);
    }

    private string Gguf()
    {
        string path = _dir.File("good.gguf");
        if (!File.Exists(path))
        {
            SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", seed: 5), path);
        }

        return path;
    }

    private string H1b()
    {
        string path = _dir.File("good.h1b");
        if (!File.Exists(path))
        {
            using IModelSource source = ModelFile.Open(Gguf());
            H1bWriter.Write(source, path);
        }

        return path;
    }

    private static byte[] Patch(byte[] good, int at, byte[] with)
    {
        byte[] copy = (byte[])good.Clone();
        with.CopyTo(copy, at);
        return copy;
    }

    private static byte[] PatchU32(byte[] good, int at, uint value)
    {
        byte[] copy = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(at), value);
        return copy;
    }

    private static byte[] PatchU64(byte[] good, int at, ulong value)
    {
        byte[] copy = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(at), value);
        return copy;
    }

    private static byte[] Flip(byte[] good, int at, byte mask = 0x5A)
    {
        byte[] copy = (byte[])good.Clone();
        copy[at] ^= mask;
        return copy;
    }

    private static int IndexOf(byte[] haystack, byte[] needle, int from) => haystack.AsSpan(from).IndexOf(needle) is var i and >= 0 ? from + i : -1;
}
