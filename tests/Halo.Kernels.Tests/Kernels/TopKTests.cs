using Halo.Kernels.Kernels;

namespace Halo.Kernels.Tests.Kernels;

public abstract class TopKTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Theory]
    [InlineData(2500, 5)]    // three slices, the last one partial
    [InlineData(40, 40)]     // k equals the width: a full sort
    [InlineData(300, 64)]    // the largest k
    public void Kernel_RandomRows_MatchesSortedReference(int width, int k)
    {
        const int rows = 2;
        float[] logits = TestData.Floats(120, rows * width, 10f);
        logits[width - 1] = logits[3];       // a tie across slices when width > 1024
        int slices = TopK.Slices(width);
        using var input = fixture.Upload(logits);
        using var candidateValues = fixture.Allocate<float>(rows * slices * k);
        using var candidateIds = fixture.Allocate<int>(rows * slices * k);
        using var topValues = fixture.Allocate<float>(rows * k);
        using var topIds = fixture.Allocate<int>(rows * k);
        fixture.Kernels.TopK(input.View, candidateValues.View, candidateIds.View, topValues.View, topIds.View, rows, width, k);

        int[] ids = topIds.GetAsArray1D();
        float[] values = topValues.GetAsArray1D();
        for (int r = 0; r < rows; r++)
        {
            int[] expected = Enumerable.Range(0, width)
                .OrderByDescending(i => logits[r * width + i]).ThenBy(i => i)
                .Take(k).ToArray();
            Assert.Equal(expected, ids.AsSpan(r * k, k).ToArray());
            Assert.Equal(expected.Select(i => logits[r * width + i]), values.AsSpan(r * k, k).ToArray());
        }
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class TopKCpuTests(CpuAcceleratorFixture fixture) : TopKTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class TopKCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : TopKTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class TopKCudaTests(CudaAcceleratorFixture fixture) : TopKTests<CudaAcceleratorFixture>(fixture);
#endif
