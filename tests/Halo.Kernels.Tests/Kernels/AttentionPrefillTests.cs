namespace Halo.Kernels.Tests.Kernels;

public abstract class AttentionPrefillTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Fact]
    public void Kernel_CausalGqaOverTwoSlots_MatchesScalarReference()
    {
        const int heads = 4, kvHeads = 2, headDim = 16, context = 48, slotCount = 2;
        // a prefill chunk of slot 0 (positions 0..4) and a later chunk of slot 1 crossing a 32-position tile
        int[] slots = [0, 0, 0, 0, 0, 1, 1];
        int[] positions = [0, 1, 2, 3, 4, 31, 40];
        float[] q = TestData.Floats(40, positions.Length * heads * headDim, 2f);
        float[] keys = TestData.Floats(41, slotCount * kvHeads * context * headDim, 2f);
        float[] values = TestData.Floats(42, keys.Length);
        using var queryBuffer = fixture.Upload(q);
        using var keyCache = fixture.Upload(keys);
        using var valueCache = fixture.Upload(values);
        using var slotBuffer = fixture.Upload(slots);
        using var posBuffer = fixture.Upload(positions);
        using var output = fixture.Allocate<float>(q.Length);
        fixture.Kernels.AttentionPrefill(queryBuffer.View, keyCache.View, valueCache.View, slotBuffer.View, posBuffer.View, output.View, positions.Length, heads, kvHeads, headDim, context);

        double[] expected = AttentionReference.Compute(q, keys, values, slots, positions, heads, kvHeads, headDim, context);
        TestData.AssertClose(expected, output.GetAsArray1D(), 1e-5);
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class AttentionPrefillCpuTests(CpuAcceleratorFixture fixture) : AttentionPrefillTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class AttentionPrefillCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : AttentionPrefillTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class AttentionPrefillCudaTests(CudaAcceleratorFixture fixture) : AttentionPrefillTests<CudaAcceleratorFixture>(fixture);
#endif
