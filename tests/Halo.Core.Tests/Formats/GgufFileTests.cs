using Halo.Core.Formats;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

public class GgufFileTests
{
    [Fact]
    public unsafe void Open_WrittenFile_ReadsEveryMetadataTypeAndTensorBack()
    {
        using var dir = new TempDir();
        string path = dir.File("all.gguf");
        byte[] f32 = new byte[4 * 3];
        BitConverter.TryWriteBytes(f32.AsSpan(4), 2.5f);
        byte[] tq2 = Enumerable.Range(0, 2 * Tq2_0.BlockBytes).Select(i => (byte)i).ToArray();
        using (var stream = File.Create(path))
        {
            var w = new GgufWriter(stream) { Alignment = 64 };
            w.Metadata.Set("u8", GgufValue.UInt8(200));
            w.Metadata.Set("i8", GgufValue.Int8(-5));
            w.Metadata.Set("u16", GgufValue.UInt16(65000));
            w.Metadata.Set("i16", GgufValue.Int16(-30000));
            w.Metadata.Set("u32", GgufValue.UInt32(4_000_000_000));
            w.Metadata.Set("i32", GgufValue.Int32(-7));
            w.Metadata.Set("u64", GgufValue.UInt64(ulong.MaxValue));
            w.Metadata.Set("i64", GgufValue.Int64(long.MinValue));
            w.Metadata.Set("f32", GgufValue.Float32(1.5f));
            w.Metadata.Set("f64", GgufValue.Float64(-2.25));
            w.Metadata.Set("bool", GgufValue.Bool(true));
            w.Metadata.Set("str", GgufValue.String("héllo ✓"));
            w.Metadata.Set("strs", GgufValue.StringArray(["a", "", "ü"]));
            w.Metadata.Set("ints", GgufValue.Int32Array([1, -2, 3]));
            w.Metadata.Set("u16s", GgufValue.Array(GgufValueType.UInt16, new ushort[] { 9, 8 }));
            w.Metadata.Set("bools", GgufValue.Array(GgufValueType.Bool, new[] { true, false }));
            w.Metadata.Set("nested", GgufValue.Array(GgufValueType.Array, new[] { GgufValue.Int32Array([4]), GgufValue.StringArray(["x"]) }));
            w.AddTensor("vec", GgmlType.F32, [3]);
            w.AddTensor("tern", GgmlType.TQ2_0, [256, 2]);
            w.WriteHeader();
            w.WriteTensorData(f32);
            w.WriteTensorData(tq2.AsSpan(0, 10));
            w.WriteTensorData(tq2.AsSpan(10));
            w.Finish();
        }

        using GgufFile g = GgufFile.Open(path);

        Assert.Equal(3u, g.Version);
        Assert.Equal(64u, g.Alignment);
        Assert.Equal(0, g.DataOffset % 64);
        GgufMetadata m = g.Metadata;
        Assert.Equal((byte)200, m["u8"].Value);
        Assert.Equal((sbyte)-5, m["i8"].Value);
        Assert.Equal((ushort)65000, m["u16"].Value);
        Assert.Equal((short)-30000, m["i16"].Value);
        Assert.Equal(4_000_000_000u, m["u32"].Value);
        Assert.Equal(-7, m["i32"].Value);
        Assert.Equal(ulong.MaxValue, m["u64"].Value);
        Assert.Equal(long.MinValue, m["i64"].Value);
        Assert.Equal(1.5f, m["f32"].Value);
        Assert.Equal(-2.25, m["f64"].Value);
        Assert.Equal(true, m["bool"].Value);
        Assert.Equal("héllo ✓", m.GetString("str"));
        Assert.Equal(["a", "", "ü"], m.GetArrayOrNull<string>("strs")!);
        Assert.Equal([1, -2, 3], m.GetInt32ArrayOrNull("ints")!);
        Assert.Equal([9, 8], m.GetInt32ArrayOrNull("u16s")!);
        Assert.Equal([true, false], m.GetArrayOrNull<bool>("bools")!);
        var nested = m.GetArrayOrNull<GgufValue>("nested")!;
        Assert.Equal([4], (int[])nested[0].Value);
        Assert.Equal(["x"], (string[])nested[1].Value);

        Assert.Equal(2, g.Tensors.Count);
        TensorView vec = g.GetTensor("vec");
        Assert.Equal(GgmlType.F32, vec.Type);
        Assert.Equal([3L], vec.Shape);
        Assert.Equal(f32, vec.Bytes.ToArray());
        TensorView tern = g.GetTensor("tern");
        Assert.Equal([256L, 2L], tern.Shape);
        Assert.Equal(tq2, tern.Bytes.ToArray());
        Assert.Equal(0, g.TensorOffset(1) % 64);

        // Zero-copy: the view points into the mapped file at DataOffset + offset.
        Assert.Equal(File.ReadAllBytes(path).AsSpan((int)(g.DataOffset + g.TensorOffset(1)), tern.Bytes.Length).ToArray(), tern.Bytes.ToArray());
    }

    [Fact]
    public void Open_SyntheticModel_ListsLlamaCppBitNetTensors()
    {
        using var dir = new TempDir();
        string path = GgufTestFiles.WriteSmallModel(dir);

        using GgufFile g = GgufFile.Open(path);

        Assert.Equal(GgmlType.F16, g.GetTensor("token_embd.weight").Type);
        Assert.Equal([256L, 300L], g.GetTensor("token_embd.weight").Shape);
        Assert.Equal(GgmlType.TQ2_0, g.GetTensor("blk.0.attn_q.weight").Type);
        Assert.Equal([256L, 128L], g.GetTensor("blk.0.attn_k.weight").Shape);
        Assert.Equal([768L, 256L], g.GetTensor("blk.0.ffn_down.weight").Shape);
        Assert.Equal(GgmlType.F32, g.GetTensor("blk.0.ffn_down.scale").Type);
        Assert.Equal([768L], g.GetTensor("blk.0.ffn_sub_norm.weight").Shape);
        Assert.True(g.TryGetTensor("output_norm.weight", out _));
        Assert.False(g.TryGetTensor("output.weight", out _));
    }

    [Fact]
    public void GetTensor_Missing_NamesFileAndTensor()
    {
        using var dir = new TempDir();
        string path = GgufTestFiles.WriteSmallModel(dir);
        using GgufFile g = GgufFile.Open(path);

        var e = Assert.Throws<InvalidModelException>(() => g.GetTensor("blk.9.attn_q.weight"));

        Assert.Equal(path, e.File);
        Assert.Contains("blk.9.attn_q.weight", e.Message);
    }
}
