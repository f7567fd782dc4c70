using System.Buffers.Binary;
using System.Text;
using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

/// <summary>
/// Each test takes a valid small model, corrupts one field precisely, and expects one
/// <see cref="InvalidModelException"/> that names the file and the field - never a crash, hang or huge allocation.
/// </summary>
public sealed class GgufFileValidationTests : IDisposable
{
    private static readonly Lazy<byte[]> Valid = new(() =>
    {
        using var dir = new TempDir();
        return File.ReadAllBytes(GgufTestFiles.WriteSmallModel(dir));
    });

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Open_Valid_Succeeds()
    {
        using IModelSource model = ModelFile.Open(Write(Valid.Value));

        Assert.Equal(1, model.Config.LayerCount);
    }

    [Fact]
    public void Open_BadMagic_SaysNotGguf()
    {
        string path = Corrupt(b => b[0] = (byte)'X');

        Assert.Contains("bad magic", Fails(path, GgufFile.Open));
    }

    [Theory]
    [InlineData(1u, "v1 is obsolete")]
    [InlineData(4u, "supported versions are 2 and 3")]
    [InlineData(0x03000000u, "big-endian")]
    public void Open_BadVersion_SaysWhy(uint version, string why)
    {
        string path = Corrupt(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), version));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains($"unsupported GGUF version {version}", message);
        Assert.Contains(why, message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(23)]
    public void Open_ShorterThanHeader_SaysTruncated(int length)
    {
        string path = Write(Valid.Value.AsSpan(0, length).ToArray());

        Assert.Contains("truncated", Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_CutInsideMetadata_SaysTruncatedWhileReading()
    {
        string path = Write(Valid.Value.AsSpan(0, 2000).ToArray());

        Assert.Contains("truncated", Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_CutInsideTensorData_NamesTheLastTensor()
    {
        byte[] valid = Valid.Value;
        string path = Write(valid.AsSpan(0, valid.Length - 10).ToArray());

        string message = Fails(path, GgufFile.Open);

        Assert.Contains("output_norm.weight", message);
        Assert.Contains("runs past the end", message);
    }

    [Theory]
    [InlineData(8, "tensor_count")]
    [InlineData(16, "metadata_kv_count")]
    public void Open_AbsurdCount_IsRejectedBeforeAllocating(int offset, string field)
    {
        string path = Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(offset), 1UL << 60));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains(field, message);
        Assert.Contains("impossible", message);
    }

    [Fact]
    public void Open_AbsurdStringLength_IsRejected()
    {
        // The first key's length prefix sits right after the 24-byte header.
        string path = Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), ulong.MaxValue - 3));

        Assert.Contains("string length", Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_AbsurdArrayLength_NamesTheKey()
    {
        int at = AfterKey(Valid.Value, GgufTokenizer.TokensKey);
        string path = Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at + 8), 1UL << 61));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains(GgufTokenizer.TokensKey, message);
        Assert.Contains("array length", message);
    }

    [Fact]
    public void Open_UnknownValueType_NamesTheKey()
    {
        int at = AfterKey(Valid.Value, "general.name");
        string path = Corrupt(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), 77));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains("general.name", message);
        Assert.Contains("unknown value type 77", message);
    }

    [Fact]
    public void Open_BoolByteNotZeroOrOne_NamesTheKey()
    {
        int at = AfterKey(Valid.Value, GgufModel.SyntheticKey);
        string path = Corrupt(b => b[at + 4] = 7);

        Assert.Contains(GgufModel.SyntheticKey, Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_UnknownTensorType_NamesTensorAndType()
    {
        int at = AfterTensorName(Valid.Value, "blk.0.attn_k.weight");
        string path = Corrupt(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at + 4 + 16), 99));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains("blk.0.attn_k.weight", message);
        Assert.Contains("unknown ggml type 99", message);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(5u)]
    public void Open_BadDimensionCount_NamesTensor(uint dims)
    {
        int at = AfterTensorName(Valid.Value, "blk.0.attn_k.weight");
        string path = Corrupt(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), dims));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains("blk.0.attn_k.weight", message);
        Assert.Contains($"{dims} dimensions", message);
    }

    [Fact]
    public void Open_ShapeOverflowingInt64_SaysOverflow()
    {
        int at = AfterTensorName(Valid.Value, "blk.0.attn_k.weight");
        string path = Corrupt(b =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at + 4), 1UL << 40);
            BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at + 12), 1UL << 40);
        });

        string message = Fails(path, GgufFile.Open);

        Assert.Contains("blk.0.attn_k.weight", message);
        Assert.Contains("overflows", message);
    }

    [Fact]
    public void Open_DimensionAboveInt64_SaysOverflow()
    {
        int at = AfterTensorName(Valid.Value, "blk.0.attn_k.weight");
        string path = Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at + 12), ulong.MaxValue));

        Assert.Contains("overflows", Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_RowNotWholeBlocks_NamesBlockSize()
    {
        int at = AfterTensorName(Valid.Value, "blk.0.attn_k.weight");
        string path = Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at + 4), 100));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains("row length 100", message);
        Assert.Contains("tq2_0", message);
    }

    [Fact]
    public void Open_OffsetPastEnd_NamesTensor()
    {
        int at = AfterTensorName(Valid.Value, "blk.0.attn_k.weight");
        string path = Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at + 4 + 16 + 4), 1UL << 40));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains("blk.0.attn_k.weight", message);
        Assert.Contains("runs past the end", message);
    }

    [Fact]
    public void Open_OffsetNearUInt64Max_DoesNotWrapAround()
    {
        int at = AfterTensorName(Valid.Value, "blk.0.attn_k.weight");
        string path = Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at + 4 + 16 + 4), ulong.MaxValue - 31));

        Assert.Contains("blk.0.attn_k.weight", Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_MisalignedOffset_NamesTensor()
    {
        int at = AfterTensorName(Valid.Value, "blk.0.attn_k.weight");
        string path = Corrupt(b =>
        {
            Span<byte> field = b.AsSpan(at + 4 + 16 + 4);
            BinaryPrimitives.WriteUInt64LittleEndian(field, BinaryPrimitives.ReadUInt64LittleEndian(field) + 1);
        });

        Assert.Contains("not aligned", Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_OverlappingTensors_NamesBoth()
    {
        int k = AfterTensorName(Valid.Value, "blk.0.attn_k.weight");
        int v = AfterTensorName(Valid.Value, "blk.0.attn_v.weight");
        string path = Corrupt(b => b.AsSpan(k + 4 + 16 + 4, 8).CopyTo(b.AsSpan(v + 4 + 16 + 4)));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains("overlaps", message);
        Assert.Contains("attn_k", message);
        Assert.Contains("attn_v", message);
    }

    [Fact]
    public void Open_MetadataCountZeroed_NamesTheMetadataCount()
    {
        // The kvs are still there; without the count they would be read as the tensor table.
        string path = Corrupt(b => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), 0));

        string message = Fails(path, GgufFile.Open);

        Assert.Contains("metadata_kv_count is 0, but a metadata entry ('general.architecture') follows the header", message);
        Assert.DoesNotContain("dimensions", message);
    }

    [Fact]
    public void Open_NoMetadataAtAll_SaysTheFileHasNone()
    {
        byte[] header = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(header, GgufFile.Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), GgufFile.CurrentVersion);
        string path = Write(header);

        string message = Fails(path, ModelFile.Open);

        Assert.Contains("metadata key 'general.architecture' is missing: the file has no metadata at all (metadata_kv_count = 0)", message);
    }

    [Fact]
    public void Open_DuplicateTensorName_IsRejected()
    {
        string path = Corrupt(b =>
        {
            int at = AfterTensorName(b, "blk.0.attn_v.weight");
            Encoding.ASCII.GetBytes("blk.0.attn_k.weight").CopyTo(b, at - "blk.0.attn_k.weight".Length);
        });

        Assert.Contains("appears twice", Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_DuplicateKey_IsRejected()
    {
        // Rename halo.synthetic.seed in place to another key of the same length that the file already has.
        string path = Corrupt(b =>
        {
            int at = AfterKey(b, SyntheticModel.SeedKey);
            byte[] twin = Encoding.ASCII.GetBytes("general.description");
            Assert.Equal(twin.Length, SyntheticModel.SeedKey.Length);
            twin.CopyTo(b, at - twin.Length);
        });

        Assert.Contains("'general.description' appears twice", Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_AlignmentNotPowerOfTwo_NamesKey()
    {
        string source = Write(Valid.Value);
        string path = _dir.File("align.gguf");
        GgufTestFiles.Rewrite(source, path, m => m.Set(GgufFile.AlignmentKey, GgufValue.UInt32(48)));

        Assert.Contains(GgufFile.AlignmentKey, Fails(path, GgufFile.Open));
    }

    [Fact]
    public void Open_MissingTensor_NamesIt()
    {
        string source = Write(Valid.Value);
        string path = _dir.File("missing.gguf");
        GgufTestFiles.Rewrite(source, path, editTensor: t =>
            t.Name == "blk.0.ffn_up.weight" ? null : (t.Name, t.Type, t.Shape, t.Bytes.ToArray()));

        InvalidModelException e = Assert.Throws<InvalidModelException>(() => ModelFile.Open(path));

        Assert.Equal(path, e.File);
        Assert.Contains("'blk.0.ffn_up.weight' is missing", e.Message);
    }

    [Fact]
    public void Open_ShapeMismatch_NamesTensorAndBothShapes()
    {
        string source = Write(Valid.Value);
        string path = _dir.File("shape.gguf");
        GgufTestFiles.Rewrite(source, path, editTensor: t =>
            t.Name == "blk.0.ffn_up.weight"
                ? (t.Name, t.Type, [512, 384], new byte[384 * 2 * Tq2_0.BlockBytes])
                : (t.Name, t.Type, t.Shape, t.Bytes.ToArray()));

        string message = Fails(path, ModelFile.Open);

        Assert.Contains("blk.0.ffn_up.weight", message);
        Assert.Contains("[512, 384]", message);
        Assert.Contains("expected [256, 768]", message);
    }

    [Fact]
    public void Open_ScaleNotF32Scalar_NamesIt()
    {
        string source = Write(Valid.Value);
        string path = _dir.File("scale.gguf");
        GgufTestFiles.Rewrite(source, path, editTensor: t =>
            t.Name == "blk.0.attn_q.scale" ? (t.Name, GgmlType.F32, [2], new byte[8]) : (t.Name, t.Type, t.Shape, t.Bytes.ToArray()));

        Assert.Contains("blk.0.attn_q.scale", Fails(path, ModelFile.Open));
    }

    [Theory]
    [InlineData("bitnet.attention.head_count", 0u, "out of range")]
    [InlineData("bitnet.attention.head_count_kv", 3u, "must divide")]
    [InlineData("bitnet.block_count", 0u, "out of range")]
    [InlineData("bitnet.embedding_length", 4_000_000_000u, "out of range")]
    public void Open_BadHyperParameter_NamesKey(string key, uint value, string why)
    {
        string source = Write(Valid.Value);
        string path = _dir.File("hp.gguf");
        GgufTestFiles.Rewrite(source, path, m => m.Set(key, value));

        string message = Fails(path, ModelFile.Open);

        Assert.Contains(key, message);
        Assert.Contains(why, message);
    }

    [Fact]
    public void Open_MissingArchitecture_NamesKey()
    {
        string source = Write(Valid.Value);
        string path = _dir.File("arch.gguf");
        GgufTestFiles.Rewrite(source, path, m => m.Remove("general.architecture"));

        Assert.Contains("'general.architecture' is missing", Fails(path, ModelFile.Open));
    }

    [Fact]
    public void Open_TokenTypesCountMismatch_NamesKey()
    {
        string source = Write(Valid.Value);
        string path = _dir.File("types.gguf");
        GgufTestFiles.Rewrite(source, path, m => m.Set(GgufTokenizer.TokenTypeKey, GgufValue.Int32Array([1, 1])));

        Assert.Contains(GgufTokenizer.TokenTypeKey, Fails(path, ModelFile.Open));
    }

    [Fact]
    public void Open_BosIdOutsideVocabulary_NamesKey()
    {
        string source = Write(Valid.Value);
        string path = _dir.File("bos.gguf");
        GgufTestFiles.Rewrite(source, path, m => m.Set(GgufTokenizer.BosKey, 99999u));

        Assert.Contains(GgufTokenizer.BosKey, Fails(path, ModelFile.Open));
    }

    [Fact]
    public void Open_EveryTruncationLength_FailsCleanly()
    {
        // Cut the file at many points through header, metadata, tensor table and data: always one clean error.
        byte[] valid = Valid.Value;
        for (int length = 24; length < valid.Length; length += 997)
        {
            string path = Write(valid.AsSpan(0, length).ToArray());
            InvalidModelException e = Assert.Throws<InvalidModelException>(() => ModelFile.Open(path).Dispose());
            Assert.Equal(path, e.File);
        }
    }

    private string Write(byte[] bytes)
    {
        string path = _dir.File($"m{Guid.NewGuid():N}.gguf");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string Corrupt(Action<byte[]> edit)
    {
        byte[] bytes = (byte[])Valid.Value.Clone();
        edit(bytes);
        return Write(bytes);
    }

    private static string Fails<T>(string path, Func<string, T> open)
        where T : IDisposable
    {
        InvalidModelException e = Assert.Throws<InvalidModelException>(() => open(path).Dispose());
        Assert.Equal(path, e.File);
        Assert.StartsWith(path + ": ", e.Message);
        return e.Message;
    }

    // The position just after a length-prefixed string in the header (a key or a tensor name).
    private static int AfterKey(byte[] file, string key, bool required = true)
    {
        byte[] needle = new byte[8 + key.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(needle, (ulong)key.Length);
        Encoding.ASCII.GetBytes(key).CopyTo(needle, 8);
        int at = file.AsSpan().IndexOf(needle);
        Assert.True(at >= 0 || !required, $"'{key}' not found");
        return at < 0 ? -1 : at + needle.Length;
    }

    private static int AfterTensorName(byte[] file, string name) => AfterKey(file, name);
}
