namespace Halo.Kernels.Tests.Kernels;

public abstract class QuantizeActivationsTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    /// <summary>Scalar reference: per block absmax, q = round-half-even(x * 127 / absmax), scale = 1 / (127 / absmax).</summary>
    internal static (sbyte[] Q, float[] Scales) Reference(float[] x, int rows, int width, int blockSize)
    {
        var q = new sbyte[rows * width];
        var scales = new float[rows * width / blockSize];
        for (int b = 0; b < scales.Length; b++)
        {
            float absMax = 0f;
            for (int i = 0; i < blockSize; i++)
            {
                absMax = Math.Max(absMax, Math.Abs(x[b * blockSize + i]));
            }

            float inverse = absMax > 0 ? 127f / absMax : 0f;
            scales[b] = absMax > 0 ? 1f / inverse : 0f;
            for (int i = 0; i < blockSize; i++)
            {
                q[b * blockSize + i] = (sbyte)Math.Clamp((int)MathF.Round(x[b * blockSize + i] * inverse, MidpointRounding.ToEven), -127, 127);
            }
        }

        return (q, scales);
    }

    internal static sbyte[] Unpack(int[] packed)
    {
        var values = new sbyte[packed.Length * 4];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(packed[i / 4] >> (8 * (i % 4)));
        }

        return values;
    }

    [Theory]
    [InlineData(512, 256)]    // llama.cpp's Q8_K blocks
    [InlineData(512, 512)]    // one scale per token (BitNet's per-token absmax)
    [InlineData(2304, 2304)]  // a row wider than four loads per thread of a 128-thread group, with a tail
    [InlineData(2304, 256)]
    public void Kernel_RandomRows_MatchesScalarReference(int width, int blockSize)
    {
        const int rows = 3;
        float[] x = TestData.Floats(1, rows * width, 4f);
        x[7] = 0.5f * 4f / 127f * 127f;           // values that land exactly on .5 steps exercise the tie rule
        for (int i = 0; i < width; i++)
        {
            x[2 * width + i] = 0f;                 // an all-zero row: scale 0, q 0, no division by zero
        }

        using var input = fixture.Upload(x);
        using var quantized = fixture.Allocate<int>(rows * width / 4);
        using var scales = fixture.Allocate<float>(rows * width / blockSize);
        fixture.Kernels.Quantize(input.View, quantized.View, scales.View, rows, width, blockSize);

        var (expectedQ, expectedScales) = Reference(x, rows, width, blockSize);
        Assert.Equal(expectedQ, Unpack(quantized.GetAsArray1D()));
        Assert.Equal(expectedScales, scales.GetAsArray1D());
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class QuantizeActivationsCpuTests(CpuAcceleratorFixture fixture) : QuantizeActivationsTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class QuantizeActivationsCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : QuantizeActivationsTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class QuantizeActivationsCudaTests(CudaAcceleratorFixture fixture) : QuantizeActivationsTests<CudaAcceleratorFixture>(fixture);
#endif
