using Halo.Kernels.Kernels;

namespace Halo.Kernels.Tests.Kernels;

public abstract class RopeTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    /// <summary>NEOX rotation of pairs (i, i + d/2) by pos * theta^(-2i/d), in double.</summary>
    internal static float[] Reference(float[] rows, int[] positions, int headsPerToken, int headDim, float theta)
    {
        var y = (float[])rows.Clone();
        int half = headDim / 2;
        for (int t = 0; t < positions.Length; t++)
        {
            for (int h = 0; h < headsPerToken; h++)
            {
                int start = (t * headsPerToken + h) * headDim;
                for (int i = 0; i < half; i++)
                {
                    double angle = positions[t] * Math.Pow(theta, -2.0 * i / headDim);
                    double x0 = rows[start + i], x1 = rows[start + i + half];
                    y[start + i] = (float)(x0 * Math.Cos(angle) - x1 * Math.Sin(angle));
                    y[start + i + half] = (float)(x0 * Math.Sin(angle) + x1 * Math.Cos(angle));
                }
            }
        }

        return y;
    }

    [Theory]
    [InlineData(KvRounding.None)]
    [InlineData(KvRounding.Half)]
    [InlineData(KvRounding.BFloat16)]
    public void Kernel_TokensOfTwoSlots_RotateQueriesAndCacheRotatedKeysAndValues(KvRounding rounding)
    {
        const int heads = 4, kvHeads = 2, headDim = 16, context = 64, slots = 2;
        const float theta = 10000f;
        int[] tokenSlots = [1, 1, 0, 0];
        int[] positions = [0, 1, 17, 63];
        float[] q = TestData.Floats(20, positions.Length * heads * headDim);
        float[] k = TestData.Floats(21, positions.Length * kvHeads * headDim);
        float[] v = TestData.Floats(22, k.Length);
        var (cos, sin) = Rope.Table(context, headDim, theta);
        using var queries = fixture.Upload(q);
        using var keys = fixture.Upload(k);
        using var values = fixture.Upload(v);
        using var slotBuffer = fixture.Upload(tokenSlots);
        using var pos = fixture.Upload(positions);
        using var cosBuffer = fixture.Upload(cos);
        using var sinBuffer = fixture.Upload(sin);
        using var keyCache = fixture.Allocate<float>(slots * kvHeads * context * headDim);
        using var valueCache = fixture.Allocate<float>(slots * kvHeads * context * headDim);
        fixture.Kernels.RopeAndCache(queries.View, keys.View, values.View, slotBuffer.View, pos.View, cosBuffer.View, sinBuffer.View, keyCache.View, valueCache.View, positions.Length, heads, kvHeads, headDim, context, rounding);

        TestData.AssertClose(Reference(q, positions, heads, headDim, theta), queries.GetAsArray1D(), 1e-5);
        float[] rotatedKeys = Reference(k, positions, kvHeads, headDim, theta);
        var expectedKeys = new float[slots * kvHeads * context * headDim];
        var expectedValues = new float[expectedKeys.Length];
        for (int t = 0; t < positions.Length; t++)
        {
            for (int h = 0; h < kvHeads; h++)
            {
                for (int d = 0; d < headDim; d++)
                {
                    int at = ((tokenSlots[t] * kvHeads + h) * context + positions[t]) * headDim + d;
                    expectedKeys[at] = Rounded(rotatedKeys[(t * kvHeads + h) * headDim + d], rounding);
                    expectedValues[at] = Rounded(v[(t * kvHeads + h) * headDim + d], rounding);
                }
            }
        }

        // a rotated key may land one rounding step away from the double-precision reference's
        TestData.AssertClose(expectedKeys, keyCache.GetAsArray1D(), rounding == KvRounding.BFloat16 ? 1e-2 : rounding == KvRounding.Half ? 1e-3 : 1e-5);
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
public sealed class RopeCpuTests(CpuAcceleratorFixture fixture) : RopeTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class RopeCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : RopeTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class RopeCudaTests(CudaAcceleratorFixture fixture) : RopeTests<CudaAcceleratorFixture>(fixture);
#endif
