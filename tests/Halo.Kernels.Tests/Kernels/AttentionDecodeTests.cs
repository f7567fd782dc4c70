namespace Halo.Kernels.Tests.Kernels;

public abstract class AttentionDecodeTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Theory]
    [InlineData(1, 96, 40)]   // no split: one range over the whole context
    [InlineData(3, 32, 40)]   // three splits; short sequences leave later splits empty
    [InlineData(6, 16, 40)]   // splits shorter than a warp tile
    [InlineData(3, 32, 42)]   // a head dimension that is not a multiple of the warp
    [InlineData(5, 20, 40)]   // splits that end inside a batch of 8 positions
    public void Kernel_SplitOverKvLength_MatchesScalarReference(int splits, int splitLength, int headDim)
    {
        const int heads = 4, kvHeads = 1, context = 96, slotCount = 3;
        int[] slots = [2, 0, 1];
        int[] positions = [95, 0, 33];
        float[] q = TestData.Floats(50, positions.Length * heads * headDim, 2f);
        float[] keys = TestData.Floats(51, slotCount * kvHeads * context * headDim, 2f);
        float[] values = TestData.Floats(52, keys.Length);
        using var queryBuffer = fixture.Upload(q);
        using var keyCache = fixture.Upload(keys);
        using var valueCache = fixture.Upload(values);
        using var slotBuffer = fixture.Upload(slots);
        using var posBuffer = fixture.Upload(positions);
        using var partials = fixture.Allocate<float>(positions.Length * heads * splits * (headDim + 2));
        using var output = fixture.Allocate<float>(q.Length);
        fixture.Kernels.AttentionDecode(queryBuffer.View, keyCache.View, valueCache.View, slotBuffer.View, posBuffer.View, partials.View, output.View, positions.Length, heads, kvHeads, headDim, context, splits, splitLength);

        double[] expected = AttentionReference.Compute(q, keys, values, slots, positions, heads, kvHeads, headDim, context);
        TestData.AssertClose(expected, output.GetAsArray1D(), 1e-5);
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class AttentionDecodeCpuTests(CpuAcceleratorFixture fixture) : AttentionDecodeTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSmallWarpAcceleratorCollection.Name)]
public sealed class AttentionDecodeCpuSmallWarpTests(CpuSmallWarpAcceleratorFixture fixture) : AttentionDecodeTests<CpuSmallWarpAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class AttentionDecodeCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : AttentionDecodeTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class AttentionDecodeCudaTests(CudaAcceleratorFixture fixture) : AttentionDecodeTests<CudaAcceleratorFixture>(fixture);
#endif
