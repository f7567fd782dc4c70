using Halo.Core.Formats;

namespace Halo.Core.Tests.Formats;

public class GgufWriterTests
{
    [Fact]
    public void WriteTensorData_TooManyBytes_Throws()
    {
        var w = new GgufWriter(new MemoryStream());
        w.AddTensor("x", GgmlType.F32, [2]);
        w.WriteHeader();

        Assert.Throws<InvalidOperationException>(() => w.WriteTensorData(new byte[9]));
    }

    [Fact]
    public void Finish_MissingBytes_NamesTheTensor()
    {
        var w = new GgufWriter(new MemoryStream());
        w.AddTensor("x", GgmlType.F32, [2]);
        w.AddTensor("y", GgmlType.F32, [2]);
        w.WriteHeader();
        w.WriteTensorData(new byte[8]);

        var e = Assert.Throws<InvalidOperationException>(w.Finish);

        Assert.Contains("'y'", e.Message);
    }

    [Fact]
    public void AddTensor_RowNotWholeBlocks_Throws()
    {
        var w = new GgufWriter(new MemoryStream());

        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgmlType.TQ2_0, [100, 2]));
    }

    [Fact]
    public void WriteHeader_Tensors_PadsEachToAlignment()
    {
        var stream = new MemoryStream();
        var w = new GgufWriter(stream);
        w.AddTensor("a", GgmlType.F32, [3]);
        w.AddTensor("b", GgmlType.F32, [1]);
        w.WriteHeader();
        long header = stream.Length;
        w.WriteTensorData(new byte[12]);
        w.WriteTensorData([1, 2, 3, 4]);
        w.Finish();

        Assert.Equal(0, header % 32);
        Assert.Equal(header + 32 + 4, stream.Length);
        Assert.Equal(1, stream.ToArray()[header + 32]);
    }
}
