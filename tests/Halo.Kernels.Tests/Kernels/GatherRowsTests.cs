namespace Halo.Kernels.Tests.Kernels;

public abstract class GatherRowsTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Fact]
    public void Kernel_LastTokenOfEachChunk_CopiedInOrder()
    {
        const int width = 40;
        float[] x = TestData.Floats(95, 6 * width);
        int[] rows = [4, 0, 5];
        using var input = fixture.Upload(x);
        using var rowBuffer = fixture.Upload(rows);
        using var output = fixture.Allocate<float>(rows.Length * width);
        fixture.Kernels.GatherRows(input.View, rowBuffer.View, output.View, rows.Length, width);

        float[] expected = rows.SelectMany(r => x.Skip(r * width).Take(width)).ToArray();
        Assert.Equal(expected, output.GetAsArray1D());
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class GatherRowsCpuTests(CpuAcceleratorFixture fixture) : GatherRowsTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class GatherRowsCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : GatherRowsTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class GatherRowsCudaTests(CudaAcceleratorFixture fixture) : GatherRowsTests<CudaAcceleratorFixture>(fixture);
#endif
