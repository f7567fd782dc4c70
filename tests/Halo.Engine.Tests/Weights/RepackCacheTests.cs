using System.Buffers.Binary;
using System.IO.Hashing;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Weights;
using Halo.Testing;

namespace Halo.Engine.Tests.Weights;

public sealed unsafe class RepackCacheTests
{
    private const long Bytes = (40 << 20) + 123; // three 16 MiB chunks, the last one partial

    [Fact]
    public void Store_ThenTryOpen_MapsTheSameBytes()
    {
        using var dir = new TempDir();
        var warnings = new List<string>();
        var cache = new RepackCache(dir.File("cache"), warnings.Add);
        byte[] data = RandomBytes(Bytes, seed: 1);
        fixed (byte* p = data)
        {
            cache.Store(K(1234), p, Bytes);
        }

        using WeightArena? arena = cache.TryOpen(K(1234), Bytes);

        Assert.NotNull(arena);
        Assert.True(arena.IsReadOnly);
        Assert.True(new ReadOnlySpan<byte>(arena.Start, (int)Bytes).SequenceEqual(data));
        Assert.Empty(warnings);
        Assert.Empty(Directory.GetFiles(dir.File("cache"), "*.tmp"));
    }

    [Fact]
    public void TryOpen_FlippedPayloadByte_WarnsDeletesAndMisses()
    {
        using var entry = new OneEntry();
        (RepackCache cache, List<string> warnings, string file) = (entry.Cache, entry.Warnings, entry.File);
        FlipPayloadByte(file);

        Assert.Null(cache.TryOpen(K(7), Bytes));
        Assert.Contains(warnings, w => w.Contains("checksum", StringComparison.Ordinal));
        Assert.False(File.Exists(file));
    }

    [Fact]
    public void TryOpen_ChangedInPlaceAfterAVerifiedOpen_ChecksAgainAndMisses()
    {
        using var entry = new OneEntry();
        (RepackCache cache, List<string> warnings, string file) = (entry.Cache, entry.Warnings, entry.File);
        cache.TryOpen(K(7), Bytes)!.Dispose();
        Assert.True(File.Exists(file + ".verified"));

        FlipPayloadByte(file);

        Assert.Null(cache.TryOpen(K(7), Bytes));
        Assert.Contains(warnings, w => w.Contains("checksum", StringComparison.Ordinal));
        Assert.False(File.Exists(file + ".verified"));
    }

    [Fact]
    public void TryOpen_RecordOfAnotherBoot_ChecksThePayloadAgain()
    {
        using var entry = new OneEntry();
        (RepackCache cache, List<string> warnings, string file) = (entry.Cache, entry.Warnings, entry.File);
        cache.TryOpen(K(7), Bytes)!.Dispose();

        // A byte that changed without the file's time changing (what a disk could do between boots): trusted within
        // the boot that checked it, checked again in any other.
        DateTime time = File.GetLastWriteTimeUtc(file);
        FlipPayloadByte(file);
        File.SetLastWriteTimeUtc(file, time);
        string record = File.ReadAllText(file + ".verified");
        File.WriteAllText(file + ".verified", "another-boot" + record[record.IndexOf('\n', StringComparison.Ordinal)..]);

        Assert.Null(cache.TryOpen(K(7), Bytes));
        Assert.Contains(warnings, w => w.Contains("checksum", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1000)]        // cut inside the header
    [InlineData(4096 + 5000)] // cut inside the weights
    public void TryOpen_TruncatedFile_WarnsAndMisses(long length)
    {
        using var entry = new OneEntry();
        (RepackCache cache, List<string> warnings, string file) = (entry.Cache, entry.Warnings, entry.File);
        using (var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.SetLength(length);
        }

        Assert.Null(cache.TryOpen(K(7), Bytes));
        Assert.Single(warnings);
    }

    [Fact]
    public void TryOpen_FileOfAnotherKey_Misses()
    {
        using var entry = new OneEntry();
        (RepackCache cache, List<string> warnings, string file) = (entry.Cache, entry.Warnings, entry.File);
        File.Move(file, Path.Combine(Path.GetDirectoryName(file)!, K(8).ToString() + ".repack"));

        Assert.Null(cache.TryOpen(K(8), Bytes));
        Assert.Contains(warnings, w => w.Contains("another model", StringComparison.Ordinal));
        Assert.Null(cache.TryOpen(K(7), Bytes)); // nothing under the right name either
    }

    [Fact]
    public void Store_ConcurrentWritersOfOneKey_LeaveOneValidFile()
    {
        using var dir = new TempDir();
        var warnings = new System.Collections.Concurrent.ConcurrentBag<string>();
        var cache = new RepackCache(dir.File("cache"), warnings.Add);

        Parallel.For(0, 4, _ => StoreRandom(cache, K(7)));

        Assert.Empty(warnings);
        Assert.Single(Directory.GetFiles(dir.File("cache")));
        using WeightArena? arena = cache.TryOpen(K(7), Bytes);
        Assert.NotNull(arena);
    }

    [Fact]
    public void Store_TooLittleFreeSpace_WarnsAndWritesNothing()
    {
        using var dir = new TempDir();
        var warnings = new List<string>();
        var cache = new RepackCache(dir.File("cache"), warnings.Add, freeBytes: _ => Bytes + (512L << 20));
        StoreRandom(cache, K(7));

        Assert.Contains(warnings, w => w.Contains("MiB free", StringComparison.Ordinal));
        Assert.Empty(Directory.GetFiles(dir.File("cache")));
    }

    [Fact]
    public void Store_UnwritableDirectory_WarnsWithoutThrowing()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("cache"), "a file where the directory should be");
        var warnings = new List<string>();
        var cache = new RepackCache(dir.File("cache"), warnings.Add);

        StoreRandom(cache, K(7));

        Assert.Single(warnings);
        Assert.Null(cache.TryOpen(K(7), Bytes));
    }

    [Fact]
    public void Store_FifthEntry_EvictsTheLeastRecentlyUsed()
    {
        using var dir = new TempDir();
        var cache = new RepackCache(dir.File("cache"));
        for (int key = 1; key <= 5; key++)
        {
            StoreRandom(cache, K(key), bytes: 4096);
            File.SetLastWriteTimeUtc(Directory.GetFiles(dir.File("cache"), K(key).ToString() + ".repack")[0], DateTime.UtcNow.AddMinutes(key - 10));
        }

        StoreRandom(cache, K(6), bytes: 4096);

        Assert.Equal(4, Directory.GetFiles(dir.File("cache"), "*.repack").Length);
        Assert.Null(cache.TryOpen(K(1), 4096));
        Assert.Null(cache.TryOpen(K(2), 4096));
    }

    [Fact]
    public void Key_ModelFileRewritten_Changes()
    {
        using var dir = new TempDir();
        string path = dir.File("model.gguf");
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, seed: 1), path);
        RepackKey before;
        using (IModelSource source = ModelFile.Open(path))
        {
            before = RepackCache.Key(source, "ternary")!.Value;
            Assert.NotEqual(before, RepackCache.Key(source, "int8 head")!.Value);
        }

        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, seed: 2), path);
        File.SetLastWriteTimeUtc(path, File.GetLastWriteTimeUtc(path).AddSeconds(1));
        using (IModelSource source = ModelFile.Open(path))
        {
            Assert.NotEqual(before, RepackCache.Key(source, "ternary")!.Value);
        }
    }

    [Fact]
    public void Key_OtherWeightsWithTheSameLengthAndTime_Changes()
    {
        using var dir = new TempDir();
        string path = dir.File("model.gguf");
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, seed: 1), path);
        DateTime time = File.GetLastWriteTimeUtc(path);
        long length = new FileInfo(path).Length;
        RepackKey before;
        using (IModelSource source = ModelFile.Open(path))
        {
            before = RepackCache.Key(source, "ternary")!.Value;
        }

        // `cp -p` of another model of the same shape over it: same path, length and time, other weights.
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, seed: 2), path);
        File.SetLastWriteTimeUtc(path, time);
        Assert.Equal(length, new FileInfo(path).Length);
        using (IModelSource source = ModelFile.Open(path))
        {
            Assert.NotEqual(before, RepackCache.Key(source, "ternary")!.Value);
        }
    }

    [Theory]
    [InlineData(LmHeadPrecision.Int8)]
    [InlineData(LmHeadPrecision.Int4)]
    [InlineData(LmHeadPrecision.Int6)]
    public void CpuBackend_SecondLoadFromCache_GivesIdenticalLogits(LmHeadPrecision head)
    {
        using var dir = new TempDir();
        string path = dir.File("model.gguf");
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", GgmlType.TQ2_0, seed: 3), path);
        var warnings = new List<string>();
        var cache = new RepackCache(dir.File("cache"), warnings.Add);

        float[] plain = Logits(path, null, head);
        float[] first = Logits(path, cache, head);   // repacks, then writes the cache before disposal returns
        Assert.Equal(2, Directory.GetFiles(dir.File("cache"), "*.repack").Length);
        long[] stamps = Directory.GetFiles(dir.File("cache"), "*.repack").Select(f => new FileInfo(f).Length).ToArray();
        float[] second = Logits(path, cache, head);  // maps the repacked weights and the quantized head

        Assert.Equal(plain, first);
        Assert.Equal(plain, second);
        Assert.Empty(warnings);
        Assert.Equal(stamps, Directory.GetFiles(dir.File("cache"), "*.repack").Select(f => new FileInfo(f).Length).ToArray());
    }

    [Theory]
    [InlineData("/srv/cache", null, null, "/srv/cache")]
    [InlineData("off", "/var/cache/halo", "/home/u", null)]
    [InlineData("", "/var/cache/halo:/other", "/home/u", "/var/cache/halo/repack")]
    [InlineData(null, null, "/home/u", "/home/u/.cache/halo/repack")]
    [InlineData(null, null, null, null)]
    public void DefaultDirectory_ConfigThenSystemdThenHome(string? configured, string? cacheDirectory, string? home, string? expected)
    {
        var environment = new Dictionary<string, string?> { ["CACHE_DIRECTORY"] = cacheDirectory, ["HOME"] = home };

        Assert.Equal(expected, RepackCache.DefaultDirectory(configured, name => environment.GetValueOrDefault(name)));
    }

    private static float[] Logits(string path, RepackCache? cache, LmHeadPrecision head)
    {
        using IModelSource source = ModelFile.Open(path);
        using CpuBackend backend = CpuBackend.Create(source, new BackendOptions { Threads = 2, ContextLength = 16, RepackCache = cache, LmHead = head });
        var logits = new float[backend.Config.VocabSize];
        backend.Forward([new SequenceChunk(0, 0, new[] { 1, 2, 3 })], logits);
        return logits;
    }

    [Fact]
    public void Key_IsTwoSeededHashes_NamedAndStoredAsA128BitNumber()
    {
        RepackKey key = RepackKey.Of("halo"u8);
        var value = ((UInt128)key.High << 64) | key.Low;
        Span<byte> field = stackalloc byte[16];
        key.Write(field);

        Assert.Equal(XxHash64.HashToUInt64("halo"u8), key.Low);
        Assert.NotEqual(key.Low, key.High);
        Assert.NotEqual(key, RepackKey.Of("halO"u8));
        Assert.Equal(value.ToString("x32", System.Globalization.CultureInfo.InvariantCulture), key.ToString());
        Assert.Equal(value, BinaryPrimitives.ReadUInt128LittleEndian(field));
        Assert.Equal(key, RepackKey.Read(field));
    }

    private static RepackKey K(int low) => new((ulong)low, 0);

    private static void StoreRandom(RepackCache cache, RepackKey key, long bytes = Bytes)
    {
        byte[] data = RandomBytes(bytes, seed: (int)key.Low);
        fixed (byte* p = data)
        {
            cache.Store(key, p, bytes);
        }
    }

    private static byte[] RandomBytes(long length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static void FlipPayloadByte(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        stream.Position = 4096 + (20 << 20);
        int b = stream.ReadByte();
        stream.Position--;
        stream.WriteByte((byte)(b ^ 0x10));
    }

    /// <summary>A cache in a fresh directory holding one entry (key 7): its file, and the warnings the cache gave.</summary>
    private sealed class OneEntry : IDisposable
    {
        private readonly TempDir _dir = new();

        public OneEntry()
        {
            Cache = new RepackCache(_dir.File("cache"), Warnings.Add);
            StoreRandom(Cache, K(7));
            File = Directory.GetFiles(_dir.File("cache"))[0];
        }

        public List<string> Warnings { get; } = [];

        public RepackCache Cache { get; }

        public string File { get; }

        public void Dispose() => _dir.Dispose();
    }
}
