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

    [Fact]
    public void Kernel_QueriesAndKeysAtOwnPositions_MatchScalarReference()
    {
        const int heads = 4, kvHeads = 2, headDim = 16, context = 64;
        const float theta = 10000f;
        int[] positions = [0, 1, 17, 63];
        float[] q = TestData.Floats(20, positions.Length * heads * headDim);
        float[] k = TestData.Floats(21, positions.Length * kvHeads * headDim);
        var (cos, sin) = Rope.Table(context, headDim, theta);
        using var queries = fixture.Upload(q);
        using var keys = fixture.Upload(k);
        using var pos = fixture.Upload(positions);
        using var cosBuffer = fixture.Upload(cos);
        using var sinBuffer = fixture.Upload(sin);
        fixture.Kernels.Rope(queries.View, keys.View, pos.View, cosBuffer.View, sinBuffer.View, positions.Length, heads, kvHeads, headDim);

        TestData.AssertClose(Reference(q, positions, heads, headDim, theta), queries.GetAsArray1D(), 1e-5);
        TestData.AssertClose(Reference(k, positions, kvHeads, headDim, theta), keys.GetAsArray1D(), 1e-5);
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class RopeCpuTests(CpuAcceleratorFixture fixture) : RopeTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class RopeCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : RopeTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class RopeCudaTests(CudaAcceleratorFixture fixture) : RopeTests<CudaAcceleratorFixture>(fixture);
#endif
