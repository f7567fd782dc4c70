namespace Halo.Kernels.Tests.Kernels;

public abstract class RmsNormTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    internal static float[] Reference(float[] x, float[] weight, int rows, int width, float eps, bool roundToHalf)
    {
        var y = new float[rows * width];
        for (int r = 0; r < rows; r++)
        {
            double sumSquares = 0;
            for (int i = 0; i < width; i++)
            {
                sumSquares += (double)x[r * width + i] * x[r * width + i];
            }

            double inverseRms = 1.0 / Math.Sqrt(sumSquares / width + eps);
            for (int i = 0; i < width; i++)
            {
                float v = (float)(x[r * width + i] * inverseRms * weight[i]);
                y[r * width + i] = roundToHalf ? (float)(Half)v : v;
            }
        }

        return y;
    }

    [Theory]
    [InlineData(96, false)]
    [InlineData(96, true)]
    [InlineData(2600, false)]   // four loads per thread of a 128- or 512-thread group, then a tail
    public void Kernel_RandomRows_MatchesScalarReference(int width, bool roundToHalf)
    {
        const int rows = 3;
        float[] x = TestData.Floats(10, rows * width, 5f);
        float[] weight = TestData.Floats(11, width, 2f);
        using var input = fixture.Upload(x);
        using var w = fixture.Upload(weight);
        using var output = fixture.Allocate<float>(rows * width);
        fixture.Kernels.RmsNorm(input.View, w.View, output.View, rows, width, 1e-5f, roundToHalf);

        // F16 rounding can move a value by one half-ulp step when float rounding differs at a tie: 1e-3 covers it.
        TestData.AssertClose(Reference(x, weight, rows, width, 1e-5f, roundToHalf), output.GetAsArray1D(), roundToHalf ? 1e-3 : 1e-5);
    }

    [Theory]
    [InlineData(64)]
    [InlineData(2600)]
    public void Kernel_InPlace_SameAsOutOfPlace(int width)
    {
        const int rows = 2;
        float[] x = TestData.Floats(12, rows * width);
        float[] weight = TestData.Floats(13, width);
        using var buffer = fixture.Upload(x);
        using var w = fixture.Upload(weight);
        fixture.Kernels.RmsNorm(buffer.View, w.View, buffer.View, rows, width, 1e-6f);
        TestData.AssertClose(Reference(x, weight, rows, width, 1e-6f, false), buffer.GetAsArray1D(), 1e-5);
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class RmsNormCpuTests(CpuAcceleratorFixture fixture) : RmsNormTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class RmsNormCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : RmsNormTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class RmsNormCudaTests(CudaAcceleratorFixture fixture) : RmsNormTests<CudaAcceleratorFixture>(fixture);
#endif
