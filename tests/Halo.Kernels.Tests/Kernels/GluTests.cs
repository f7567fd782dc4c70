using Halo.Kernels.Kernels;

namespace Halo.Kernels.Tests.Kernels;

public abstract class GluTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Theory]
    [InlineData(Glu.Silu)]
    [InlineData(Glu.Relu2)]
    public void Kernel_GateAndUp_MatchesScalarReference(int activation)
    {
        const int count = 300; // not a multiple of the 128-lane group: the tail is guarded
        float[] gate = TestData.Floats(70, count, 6f);
        float[] up = TestData.Floats(71, count, 2f);
        using var gateBuffer = fixture.Upload(gate);
        using var upBuffer = fixture.Upload(up);
        fixture.Kernels.Glu(gateBuffer.View, upBuffer.View, count, activation);

        var expected = new double[count];
        for (int i = 0; i < count; i++)
        {
            double g = gate[i];
            double a = activation == Glu.Relu2 ? Math.Max(g, 0) * Math.Max(g, 0) : g / (1 + Math.Exp(-g));
            expected[i] = a * up[i];
        }

        TestData.AssertClose(expected, gateBuffer.GetAsArray1D(), 1e-5);
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class GluCpuTests(CpuAcceleratorFixture fixture) : GluTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class GluCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : GluTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class GluCudaTests(CudaAcceleratorFixture fixture) : GluTests<CudaAcceleratorFixture>(fixture);
#endif
