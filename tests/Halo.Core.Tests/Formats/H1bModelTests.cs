using System.Buffers.Binary;
using System.Security.Cryptography;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

public class H1bModelTests
{
    [Fact]
    public unsafe void Write_FromGguf_ReadsBackBitExact()
    {
        using var dir = new TempDir();
        string gguf = GgufTestFiles.WriteSmallModel(dir);
        string h1b = dir.File("m.h1b");
        using GgufModel source = GgufModel.Open(gguf);

        H1bWriter.Write(source, h1b);
        using H1bModel model = H1bModel.Open(h1b);

        Assert.Equal("h1b", model.Format);
        Assert.Equal(source.Config, model.Config);
        Assert.Equal(source.Tensors.Count, model.Tensors.Count);
        foreach (TensorView s in source.Tensors)
        {
            TensorView t = model.GetTensor(s.Name);
            Assert.Equal(s.Type, t.Type);
            Assert.Equal(s.Shape, t.Shape);
            Assert.True(s.Bytes.SequenceEqual(t.Bytes), s.Name);
            Assert.Equal(0, (long)t.Data % H1bFormat.Alignment);
        }

        var a = source.Tokenizer!;
        var b = model.Tokenizer!;
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.Equal(a.Merges, b.Merges);
        Assert.Equal(a.TokenTypes, b.TokenTypes);
        Assert.Equal((a.Model, a.PreTokenizer, a.BosId, a.EosId, a.EotId, a.PadId, a.AddBos, a.ChatTemplate),
            (b.Model, b.PreTokenizer, b.BosId, b.EosId, b.EotId, b.PadId, b.AddBos, b.ChatTemplate));
    }

    [Fact]
    public void Write_FromSafetensors_KeepsConvertedTernaryAndScales()
    {
        using var dir = new TempDir();
        SyntheticCheckpoint.Write(dir.File("ckpt"), SafetensorsModelTests.SmallConfig, CheckpointForm.Packed, seed: 1);
        using SafetensorsModel source = SafetensorsModel.Open(dir.File("ckpt"));
        string h1b = dir.File("c.h1b");

        H1bWriter.Write(source, h1b);
        using IModelSource model = ModelFile.Open(h1b);

        Assert.Equal("h1b", model.Format);
        Assert.Equal(Activation.Relu2, model.Config.Activation);
        foreach (TensorView s in source.Tensors)
        {
            Assert.True(s.Bytes.SequenceEqual(model.GetTensor(s.Name).Bytes), s.Name);
        }

        Assert.Null(model.Tokenizer);
    }

    [Fact]
    public void Write_Twice_SameBytes()
    {
        using var dir = new TempDir();
        using GgufModel source = GgufModel.Open(GgufTestFiles.WriteSmallModel(dir));

        H1bWriter.Write(source, dir.File("a.h1b"));
        H1bWriter.Write(source, dir.File("b.h1b"));

        Assert.Equal(SHA256.HashData(File.ReadAllBytes(dir.File("a.h1b"))), SHA256.HashData(File.ReadAllBytes(dir.File("b.h1b"))));
        Assert.False(File.Exists(dir.File("a.h1b.partial")));
    }

    [Fact]
    public void Open_FlippedWeightByte_FailsTensorChecksum()
    {
        using var dir = new TempDir();
        string h1b = WriteH1b(dir);
        long at;
        using (H1bModel m = H1bModel.Open(h1b))
        {
            at = TensorFileOffset(m, "blk.0.ffn_down.weight") + 100;
        }

        Flip(h1b, at);

        var e = Assert.Throws<InvalidModelException>(() => H1bModel.Open(h1b).Dispose());
        Assert.Equal(h1b, e.File);
        Assert.Contains("'blk.0.ffn_down.weight' fails its checksum", e.Message);

        using H1bModel lazy = H1bModel.Open(h1b, verifyTensors: false);
        Assert.Throws<InvalidModelException>(lazy.VerifyTensors);
    }

    [Fact]
    public void Open_FlippedHeaderByte_FailsHeaderChecksum()
    {
        using var dir = new TempDir();
        string h1b = WriteH1b(dir);
        long headerOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(Section(h1b, H1bFormat.HeaderSection).AsSpan(8));

        Flip(h1b, headerOffset + 10);

        Assert.Contains("header section fails its checksum", Fails(h1b));
    }

    [Fact]
    public void Open_FlippedVocabularyByte_FailsVocabularyChecksum()
    {
        using var dir = new TempDir();
        string h1b = WriteH1b(dir);
        long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(Section(h1b, H1bFormat.VocabularySection).AsSpan(8));

        Flip(h1b, offset + 50);

        Assert.Contains("vocabulary section fails its checksum", Fails(h1b));
    }

    [Fact]
    public void Open_FlippedSectionTable_FailsPreambleChecksum()
    {
        using var dir = new TempDir();
        string h1b = WriteH1b(dir);

        Flip(h1b, H1bFormat.PreambleBytes + 9);

        Assert.Contains("preamble", Fails(h1b));
    }

    [Fact]
    public void Open_Truncated_SaysSectionRunsPastEnd()
    {
        using var dir = new TempDir();
        string h1b = WriteH1b(dir);
        byte[] bytes = File.ReadAllBytes(h1b);
        File.WriteAllBytes(h1b, bytes.AsSpan(0, bytes.Length - 1).ToArray());

        Assert.Contains("runs past the end", Fails(h1b));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(20)]
    public void Open_TooShort_SaysTruncated(int length)
    {
        using var dir = new TempDir();
        string h1b = WriteH1b(dir);
        File.WriteAllBytes(h1b, File.ReadAllBytes(h1b).AsSpan(0, length).ToArray());

        Assert.Contains("truncated", Fails(h1b));
    }

    [Fact]
    public void Open_NewerVersion_NamesVersion()
    {
        using var dir = new TempDir();
        string h1b = WriteH1b(dir);
        byte[] bytes = File.ReadAllBytes(h1b);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 2);
        File.WriteAllBytes(h1b, bytes);

        Assert.Contains("unsupported .h1b version 2", Fails(h1b));
    }

    [Fact]
    public void Open_LegacyOneBitSystemsFile_SaysHowToMigrate()
    {
        using var dir = new TempDir();
        string path = dir.File("old.h1b");
        File.WriteAllBytes(path, [(byte)'H', (byte)'1', (byte)'B', 0, 2, 0, 0, 0, .. new byte[64]]);

        var e = Assert.Throws<InvalidModelException>(() => ModelFile.Open(path).Dispose());

        Assert.Contains("1bit-systems", e.Message);
        Assert.Contains("halo convert", e.Message);
    }

    private static string WriteH1b(TempDir dir)
    {
        using GgufModel source = GgufModel.Open(GgufTestFiles.WriteSmallModel(dir));
        string h1b = dir.File("m.h1b");
        H1bWriter.Write(source, h1b);
        return h1b;
    }

    private static unsafe long TensorFileOffset(H1bModel m, string name)
    {
        byte* first = m.Tensors[0].Data;
        return H1bFormat.Alignment + (m.GetTensor(name).Data - first);
    }

    private static byte[] Section(string path, uint kind)
    {
        byte[] bytes = File.ReadAllBytes(path);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(12));
        for (int i = 0; i < count; i++)
        {
            byte[] entry = bytes.AsSpan(H1bFormat.PreambleBytes + (i * H1bFormat.SectionEntryBytes), H1bFormat.SectionEntryBytes).ToArray();
            if (BinaryPrimitives.ReadUInt32LittleEndian(entry) == kind)
            {
                return entry;
            }
        }

        throw new InvalidOperationException($"no section {kind}");
    }

    private static void Flip(string path, long at)
    {
        byte[] bytes = File.ReadAllBytes(path);
        bytes[at] ^= 0x40;
        File.WriteAllBytes(path, bytes);
    }

    private static string Fails(string path)
    {
        var e = Assert.Throws<InvalidModelException>(() => H1bModel.Open(path).Dispose());
        Assert.Equal(path, e.File);
        return e.Message;
    }
}
