namespace Halo.Kernels.Tests.Kernels;

public abstract class ArgMaxTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Theory]
    [InlineData(100)]
    [InlineData(2200)]  // four loads per thread of a 128- or 512-thread group, then a tail
    public void Kernel_RowsWithTiesAndNegatives_PicksFirstLargest(int width)
    {
        float[] logits = TestData.Floats(110, 3 * width);
        logits[37] = 5f;
        logits[90] = 5f;                      // tie in row 0: the lower index wins, as a scan would
        if (width > 165)
        {
            logits[165] = 5f;                 // and a tie with a later element of the same thread
        }

        for (int i = 0; i < width; i++)
        {
            logits[width + i] = -10f - i;     // row 1: all negative, the first is largest
        }

        logits[3 * width - 1] = 9f;           // row 2: the last element
        using var input = fixture.Upload(logits);
        using var result = fixture.Allocate<int>(3);
        fixture.Kernels.ArgMax(input.View, result.View, 3, width);

        Assert.Equal([37, 0, width - 1], result.GetAsArray1D());
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class ArgMaxCpuTests(CpuAcceleratorFixture fixture) : ArgMaxTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class ArgMaxCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : ArgMaxTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class ArgMaxCudaTests(CudaAcceleratorFixture fixture) : ArgMaxTests<CudaAcceleratorFixture>(fixture);
#endif
