namespace Halo.Kernels.Tests.Kernels;

public abstract class KvCacheWriteTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Theory]
    [InlineData(KvRounding.None)]
    [InlineData(KvRounding.Half)]
    [InlineData(KvRounding.BFloat16)]
    public void Kernel_TokensOfTwoSlots_LandAtTheirSlotHeadAndPosition(KvRounding rounding)
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
        fixture.Kernels.KvCacheWrite(keys.View, values.View, slotBuffer.View, posBuffer.View, keyCache.View, valueCache.View, 3, kvHeads, headDim, context, rounding);

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
                    expectedKeys[at] = Rounded(kv, rounding);
                    expectedValues[at] = Rounded(vv, rounding);
                }
            }
        }

        Assert.Equal(expectedKeys, keyCache.GetAsArray1D());
        Assert.Equal(expectedValues, valueCache.GetAsArray1D());
    }

    // BF16 keeps the top 16 bits of the float rounded to nearest, ties to even: System.Half's counterpart, done by hand.
    private static float Rounded(float x, KvRounding rounding) => rounding switch
    {
        KvRounding.Half => (float)(Half)x,
        KvRounding.BFloat16 => BitConverter.UInt32BitsToSingle((BitConverter.SingleToUInt32Bits(x) + 0x7FFFu + ((BitConverter.SingleToUInt32Bits(x) >> 16) & 1u)) & 0xFFFF0000u),
        _ => x,
    };
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class KvCacheWriteCpuTests(CpuAcceleratorFixture fixture) : KvCacheWriteTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class KvCacheWriteCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : KvCacheWriteTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class KvCacheWriteCudaTests(CudaAcceleratorFixture fixture) : KvCacheWriteTests<CudaAcceleratorFixture>(fixture);
#endif
