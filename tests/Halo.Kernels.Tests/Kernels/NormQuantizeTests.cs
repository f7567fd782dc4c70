using Halo.Kernels.Kernels;

namespace Halo.Kernels.Tests.Kernels;

/// <summary>
/// The fused RMS norm + int8 quantization: the norm against <see cref="RmsNormTests{TFixture}.Reference"/>, and the
/// quantization exactly against a scalar reference applied to the kernel's own normalised values (float sums in
/// another order may move a value across a rounding step, which is not an error of the quantization).
/// </summary>
public abstract class NormQuantizeTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    /// <summary>Scalar reference: per block absmax, q = round-half-even(x * 127 / absmax), scale = 1 / (127 / absmax).</summary>
    internal static (sbyte[] Q, float[] Scales) QuantizeReference(float[] x, int rows, int width, int blockSize)
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
    [InlineData(2304, 2304)]  // wider than four loads per thread of a 128- or 512-thread group, with a tail
    [InlineData(2304, 256)]
    public void Kernel_RandomRows_MatchesScalarReference(int width, int blockSize)
    {
        const int rows = 3;
        const float eps = 1e-5f;
        float[] x = TestData.Floats(1, rows * width, 4f);
        float[] weight = TestData.Floats(2, width, 2f);
        for (int i = 0; i < width; i++)
        {
            x[2 * width + i] = 0f;                 // an all-zero row: scale 0, q 0, no division by zero
        }

        var (normed, q, scales) = Run(x, weight, rows, width, eps, blockSize);

        TestData.AssertClose(RmsNormTests<TFixture>.Reference(x, weight, rows, width, eps, false), normed, 1e-5);
        var (expectedQ, expectedScales) = QuantizeReference(normed, rows, width, blockSize);
        Assert.Equal(expectedQ, q);
        Assert.Equal(expectedScales, scales);
    }

    [Theory]
    [InlineData(Glu.Silu)]
    [InlineData(Glu.Relu2)]
    public void Kernel_GatedInput_NormalisesActOfGateTimesUp(int activation)
    {
        const int rows = 2, width = 2600;   // four loads per thread, then a tail
        const float eps = 1e-5f;
        float[] gate = TestData.Floats(6, rows * width, 6f);
        float[] up = TestData.Floats(7, rows * width, 2f);
        float[] weight = TestData.Floats(8, width, 2f);
        var gated = new float[gate.Length];
        for (int i = 0; i < gate.Length; i++)
        {
            double g = gate[i];
            double a = activation == Glu.Relu2 ? Math.Max(g, 0) * Math.Max(g, 0) : g / (1 + Math.Exp(-g));
            gated[i] = (float)(a * up[i]);
        }

        using var gateBuffer = fixture.Upload(gate);
        using var upBuffer = fixture.Upload(up);
        using var w = fixture.Upload(weight);
        using var normed = fixture.Allocate<float>(rows * width);
        using var quantized = fixture.Allocate<int>(rows * width / 4);
        using var scales = fixture.Allocate<float>(rows);
        fixture.Kernels.NormQuantize(gateBuffer.View, w.View, normed.View, quantized.View, scales.View, rows, width, eps, width, up: upBuffer.View, activation: activation);

        TestData.AssertClose(gated, gateBuffer.GetAsArray1D(), 1e-5);
        float[] normedValues = normed.GetAsArray1D();
        TestData.AssertClose(RmsNormTests<TFixture>.Reference(gated, weight, rows, width, eps, false), normedValues, 1e-5);
        var (expectedQ, expectedScales) = QuantizeReference(normedValues, rows, width, width);
        Assert.Equal(expectedQ, Unpack(quantized.GetAsArray1D()));
        Assert.Equal(expectedScales, scales.GetAsArray1D());
    }

    [Fact]
    public void Kernel_ValuesOnHalfSteps_RoundTiesToEven()
    {
        // a row of ones with eps 0 normalises to exactly the weights; absmax 127 makes the step exactly 1
        const int width = 256;
        float[] x = new float[width];
        Array.Fill(x, 1f);
        float[] weight = TestData.Floats(3, width, 1f);
        weight[0] = 127f;
        weight[1] = 2.5f;
        weight[2] = 3.5f;
        weight[3] = -2.5f;
        weight[4] = 0.5f;

        var (normed, q, _) = Run(x, weight, 1, width, 0f, width);

        Assert.Equal(weight, normed);
        Assert.Equal([127, 2, 4, -2, 0], q[..5]);
    }

    [Fact]
    public void Kernel_InPlace_SameAsOutOfPlace()
    {
        const int rows = 2, width = 640;
        float[] x = TestData.Floats(4, rows * width, 3f);
        float[] weight = TestData.Floats(5, width);
        var (normed, q, scales) = Run(x, weight, rows, width, 1e-6f, width);
        using var buffer = fixture.Upload(x);
        using var w = fixture.Upload(weight);
        using var quantized = fixture.Allocate<int>(rows * width / 4);
        using var scaleBuffer = fixture.Allocate<float>(rows);
        fixture.Kernels.NormQuantize(buffer.View, w.View, buffer.View, quantized.View, scaleBuffer.View, rows, width, 1e-6f, width);

        Assert.Equal(normed, buffer.GetAsArray1D());
        Assert.Equal(q, Unpack(quantized.GetAsArray1D()));
        Assert.Equal(scales, scaleBuffer.GetAsArray1D());
    }

    private (float[] Normed, sbyte[] Q, float[] Scales) Run(float[] x, float[] weight, int rows, int width, float eps, int blockSize)
    {
        using var input = fixture.Upload(x);
        using var w = fixture.Upload(weight);
        using var normed = fixture.Allocate<float>(rows * width);
        using var quantized = fixture.Allocate<int>(rows * width / 4);
        using var scales = fixture.Allocate<float>(rows * width / blockSize);
        fixture.Kernels.NormQuantize(input.View, w.View, normed.View, quantized.View, scales.View, rows, width, eps, blockSize);
        return (normed.GetAsArray1D(), Unpack(quantized.GetAsArray1D()), scales.GetAsArray1D());
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class NormQuantizeCpuTests(CpuAcceleratorFixture fixture) : NormQuantizeTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class NormQuantizeCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : NormQuantizeTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class NormQuantizeCudaTests(CudaAcceleratorFixture fixture) : NormQuantizeTests<CudaAcceleratorFixture>(fixture);
#endif
