namespace Halo.Kernels.Tests.Kernels;

public abstract class SamplingTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    /// <summary>Scalar reference of the filter chain: top-p, min-p on T = 1 probabilities, then a tempered draw.</summary>
    internal static int Reference(float[] values, int[] ids, float u, float temperature, float topP, float minP)
    {
        if (temperature <= 0)
        {
            return ids[0];
        }

        double[] p = values.Select(v => Math.Exp(v - values[0])).ToArray();
        double total = p.Sum();
        int keep = values.Length;
        double cumulative = 0;
        for (int i = 0; i < values.Length && topP < 1; i++)
        {
            cumulative += p[i] / total;
            if (cumulative >= topP)
            {
                keep = i + 1;
                break;
            }
        }

        for (int i = 1; i < keep && minP > 0; i++)
        {
            if (p[i] < minP)
            {
                keep = i;
                break;
            }
        }

        double[] w = values.Take(keep).Select(v => Math.Exp((v - values[0]) / temperature)).ToArray();
        double target = u * w.Sum(), running = 0;
        for (int i = 0; i < keep; i++)
        {
            running += w[i];
            if (running > target)
            {
                return ids[i];
            }
        }

        return ids[keep - 1];
    }

    [Theory]
    [InlineData(0f, 1f, 0f)]      // greedy
    [InlineData(1f, 1f, 0f)]      // plain draw among all candidates
    [InlineData(0.7f, 0.9f, 0f)]  // top-p
    [InlineData(1.3f, 1f, 0.2f)]  // min-p
    [InlineData(0.8f, 0.95f, 0.05f)]
    public void Kernel_ManyUniforms_MatchesScalarReference(float temperature, float topP, float minP)
    {
        const int k = 8, rows = 64;
        var values = new float[rows * k];
        var ids = new int[rows * k];
        float[] row = [3f, 2.5f, 2.4f, 1f, 0.5f, 0f, -1f, -3f];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < k; i++)
            {
                values[r * k + i] = row[i];
                ids[r * k + i] = 1000 + i;
            }
        }

        float[] uniforms = Enumerable.Range(0, rows).Select(i => (i + 0.5f) / rows).ToArray();
        using var valueBuffer = fixture.Upload(values);
        using var idBuffer = fixture.Upload(ids);
        using var uniformBuffer = fixture.Upload(uniforms);
        using var tokens = fixture.Allocate<int>(rows);
        fixture.Kernels.Sample(valueBuffer.View, idBuffer.View, uniformBuffer.View, tokens.View, rows, k, temperature, topP, minP);

        int[] expected = uniforms.Select(u => Reference(row, [.. Enumerable.Range(1000, k)], u, temperature, topP, minP)).ToArray();
        Assert.Equal(expected, tokens.GetAsArray1D());
        Assert.True(temperature <= 0 || expected.Distinct().Count() > 1, "the uniforms should reach several candidates");
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class SamplingCpuTests(CpuAcceleratorFixture fixture) : SamplingTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class SamplingCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : SamplingTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class SamplingCudaTests(CudaAcceleratorFixture fixture) : SamplingTests<CudaAcceleratorFixture>(fixture);
#endif
