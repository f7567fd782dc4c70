using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

/// <summary>
/// Random corruption of real files: whatever bytes are damaged, opening either succeeds or fails with
/// <see cref="InvalidModelException"/> - never another exception type, a crash or a hang.
/// </summary>
public class CorruptionFuzzTests
{
    [Fact]
    public void ModelFileOpen_GgufWithRandomHeaderDamage_OnlyInvalidModelException()
    {
        using var dir = new TempDir();
        byte[] valid = File.ReadAllBytes(GgufTestFiles.WriteSmallModel(dir));
        int headerBytes;
        using (GgufFile g = GgufFile.Open(dir.File("small.gguf")))
        {
            headerBytes = (int)g.DataOffset;
        }

        Fuzz(dir, valid, headerBytes, "gguf", seed: 1);
    }

    [Fact]
    public void ModelFileOpen_H1bWithRandomDamage_OnlyInvalidModelException()
    {
        using var dir = new TempDir();
        using (GgufModel source = GgufModel.Open(GgufTestFiles.WriteSmallModel(dir)))
        {
            H1bWriter.Write(source, dir.File("m.h1b"));
        }

        byte[] valid = File.ReadAllBytes(dir.File("m.h1b"));
        Fuzz(dir, valid, valid.Length, "h1b", seed: 2);
    }

    [Fact]
    public void ModelFileOpen_SafetensorsWithRandomHeaderDamage_OnlyInvalidModelException()
    {
        using var dir = new TempDir();
        string ckpt = dir.File("ckpt");
        SyntheticCheckpoint.Write(ckpt, SafetensorsModelTests.SmallConfig, CheckpointForm.Packed, seed: 3);
        string file = Path.Combine(ckpt, "model.safetensors");
        byte[] valid = File.ReadAllBytes(file);
        int headerBytes = 8 + (int)BitConverter.ToUInt64(valid, 0);
        var rng = new Random(3);
        for (int round = 0; round < 150; round++)
        {
            byte[] bytes = Damage(valid, headerBytes, rng);
            File.WriteAllBytes(file, bytes);
            OpenExpectingOnlyInvalidModel(ckpt);
        }
    }

    private static void Fuzz(TempDir dir, byte[] valid, int region, string name, int seed)
    {
        var rng = new Random(seed);
        string path = dir.File($"fuzz.{name}");
        for (int round = 0; round < 300; round++)
        {
            File.WriteAllBytes(path, Damage(valid, region, rng));
            OpenExpectingOnlyInvalidModel(path);
        }
    }

    // Flip 1-4 random bytes in [0, region), or set a random 8-byte field to an extreme value, or cut the file.
    private static byte[] Damage(byte[] valid, int region, Random rng)
    {
        byte[] bytes = (byte[])valid.Clone();
        switch (rng.Next(3))
        {
            case 0:
                for (int k = rng.Next(1, 5); k > 0; k--)
                {
                    bytes[rng.Next(region)] ^= (byte)rng.Next(1, 256);
                }

                return bytes;
            case 1:
                int at = rng.Next(Math.Max(1, region - 8));
                ulong[] extremes = [0, 1, uint.MaxValue, (ulong)int.MaxValue + 1, long.MaxValue, ulong.MaxValue, 1UL << 62];
                BitConverter.TryWriteBytes(bytes.AsSpan(at, 8), extremes[rng.Next(extremes.Length)]);
                return bytes;
            default:
                return bytes.AsSpan(0, rng.Next(bytes.Length)).ToArray();
        }
    }

    private static void OpenExpectingOnlyInvalidModel(string path)
    {
        try
        {
            using IModelSource model = ModelFile.Open(path);
        }
        catch (InvalidModelException)
        {
            // The one acceptable failure.
        }
    }
}
