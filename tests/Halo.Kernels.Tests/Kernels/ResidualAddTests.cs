namespace Halo.Kernels.Tests.Kernels;

public abstract class ResidualAddTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Fact]
    public void Kernel_AddsUpdateInPlace_AndLeavesTheRestAlone()
    {
        const int count = 200;
        float[] x = TestData.Floats(80, count + 8);
        float[] y = TestData.Floats(81, count + 8);
        using var residual = fixture.Upload(x);
        using var update = fixture.Upload(y);
        fixture.Kernels.ResidualAdd(residual.View, update.View, count);

        var expected = (float[])x.Clone();
        for (int i = 0; i < count; i++)
        {
            expected[i] = x[i] + y[i];
        }

        Assert.Equal(expected, residual.GetAsArray1D());
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class ResidualAddCpuTests(CpuAcceleratorFixture fixture) : ResidualAddTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class ResidualAddCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : ResidualAddTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class ResidualAddCudaTests(CudaAcceleratorFixture fixture) : ResidualAddTests<CudaAcceleratorFixture>(fixture);
#endif
