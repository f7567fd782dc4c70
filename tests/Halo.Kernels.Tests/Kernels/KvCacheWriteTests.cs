namespace Halo.Kernels.Tests.Kernels;

public abstract class KvCacheWriteTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Kernel_TokensOfTwoSlots_LandAtTheirSlotHeadAndPosition(bool roundToHalf)
    {
        const int kvHeads = 2, headDim = 8, context = 10, slots = 2;
        int[] tokenSlots = [1, 1, 0];
        int[] positions = [4, 5, 9];
        float[] k = TestData.Floats(30, 3 * kvHeads * headDim);
        float[] v = TestData.Floats(31, 3 * kvHeads * headDim);
        using var keys = fixture.Upload(k);
        using var values = fixture.Upload(v);
        using var slotBuffer = fixture.Upload(tokenSlots);
        using var posBuffer = fixture.Upload(positions);
        using var keyCache = fixture.Allocate<float>(slots * kvHeads * context * headDim);
        using var valueCache = fixture.Allocate<float>(slots * kvHeads * context * headDim);
        fixture.Kernels.KvCacheWrite(keys.View, values.View, slotBuffer.View, posBuffer.View, keyCache.View, valueCache.View, 3, kvHeads, headDim, context, roundToHalf);

        var expectedKeys = new float[slots * kvHeads * context * headDim];
        var expectedValues = new float[expectedKeys.Length];
        for (int t = 0; t < 3; t++)
        {
            for (int h = 0; h < kvHeads; h++)
            {
                for (int d = 0; d < headDim; d++)
                {
                    int at = ((tokenSlots[t] * kvHeads + h) * context + positions[t]) * headDim + d;
                    float kv = k[(t * kvHeads + h) * headDim + d];
                    float vv = v[(t * kvHeads + h) * headDim + d];
                    expectedKeys[at] = roundToHalf ? (float)(Half)kv : kv;
                    expectedValues[at] = roundToHalf ? (float)(Half)vv : vv;
                }
            }
        }

        Assert.Equal(expectedKeys, keyCache.GetAsArray1D());
        Assert.Equal(expectedValues, valueCache.GetAsArray1D());
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class KvCacheWriteCpuTests(CpuAcceleratorFixture fixture) : KvCacheWriteTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class KvCacheWriteCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : KvCacheWriteTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class KvCacheWriteCudaTests(CudaAcceleratorFixture fixture) : KvCacheWriteTests<CudaAcceleratorFixture>(fixture);
#endif
