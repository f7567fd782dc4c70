using Halo.Kernels.Layout;

namespace Halo.Kernels.Tests.Kernels;

public abstract class LmHeadGemvTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Theory]
    [InlineData(96)]
    [InlineData(352)]   // 176 pairs: a round of four loads per lane, then a tail
    public void Kernel_F16TableTimesRows_MatchesScalarReference(int hidden)
    {
        const int vocab = 45, rows = 2;
        Half[] table = TestData.Floats(100, vocab * hidden).Select(v => (Half)v).ToArray();
        float[] x = TestData.Floats(101, rows * hidden, 2f);
        using var tableBuffer = fixture.Upload(HalfTable.Pack(table));
        using var input = fixture.Upload(x);
        using var logits = fixture.Allocate<float>(rows * vocab);
        fixture.Kernels.LmHead(tableBuffer.View, input.View, logits.View, rows, vocab, hidden);

        var expected = new double[rows * vocab];
        for (int r = 0; r < rows; r++)
        {
            for (int v = 0; v < vocab; v++)
            {
                double sum = 0;
                for (int i = 0; i < hidden; i++)
                {
                    sum += (double)table[v * hidden + i] * x[r * hidden + i];
                }

                expected[r * vocab + v] = sum;
            }
        }

        TestData.AssertClose(expected, logits.GetAsArray1D(), 1e-5);
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class LmHeadGemvCpuTests(CpuAcceleratorFixture fixture) : LmHeadGemvTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class LmHeadGemvCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : LmHeadGemvTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class LmHeadGemvCudaTests(CudaAcceleratorFixture fixture) : LmHeadGemvTests<CudaAcceleratorFixture>(fixture);
#endif
