using System.Buffers.Binary;
using System.Text;
using Halo.Core.Formats;
using Halo.Testing;

namespace Halo.Core.Tests.Formats;

public class SafetensorsFileTests
{
    [Fact]
    public void Open_WrittenFile_ReadsTensorsAndMetadata()
    {
        using var dir = new TempDir();
        string path = dir.File("a.safetensors");
        var w = new SafetensorsWriter();
        w.Metadata["format"] = "pt";
        w.Add("x", "BF16", [2, 3], Enumerable.Range(0, 12).Select(i => (byte)i).ToArray());
        w.Add("y", "U8", [4], [9, 8, 7, 6]);
        w.Write(path);

        using SafetensorsFile f = SafetensorsFile.Open(path);

        Assert.Equal("pt", f.Metadata["format"]);
        Assert.True(f.TryGetTensor("x", out SafetensorsTensor x));
        Assert.Equal("BF16", x.DType);
        Assert.Equal([2L, 3L], x.Shape);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (byte)i), x.Bytes.ToArray());
        Assert.True(f.TryGetTensor("y", out SafetensorsTensor y));
        Assert.Equal([9, 8, 7, 6], y.Bytes.ToArray());
    }

    [Theory]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "run past the end")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12")]
    [InlineData("{\"x\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unsupported dtype")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape entry 0")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "overflows")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, "overlaps")]
    [InlineData("{\"x\": [1, 2", 8, "not valid JSON")]
    [InlineData("[1, 2]", 8, "not a JSON object")]
    public void Open_CorruptHeader_NamesFileAndProblem(string header, int dataBytes, string problem)
    {
        using var dir = new TempDir();
        string path = dir.File("bad.safetensors");
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.Equal(path, e.File);
        Assert.Contains(problem, e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void Open_ShorterThanLengthPrefix_SaysTruncated(int length)
    {
        using var dir = new TempDir();
        string path = dir.File("short.safetensors");
        File.WriteAllBytes(path, new byte[length]);

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Open_HeaderLengthPastEnd_IsRejectedBeforeAllocating()
    {
        using var dir = new TempDir();
        string path = dir.File("huge.safetensors");
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue / 2);
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<InvalidModelException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.Contains("header length", e.Message);
    }
}
