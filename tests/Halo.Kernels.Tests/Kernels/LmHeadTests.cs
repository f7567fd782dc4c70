using Halo.Kernels.Layout;

namespace Halo.Kernels.Tests.Kernels;

public abstract class LmHeadTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Theory]
    [InlineData(96, 1)]    // one row: the one-row specialisation
    [InlineData(352, 2)]   // 176 pairs: a round of four loads per lane, then a tail; a partial tile
    [InlineData(96, 8)]    // a whole tile: a batched decode step of 8 streams
    [InlineData(96, 11)]   // a whole tile and a partial one
    public void Kernel_F16TableTimesRows_MatchesScalarReference(int hidden, int rows)
    {
        const int vocab = 45;
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
public sealed class LmHeadCpuTests(CpuAcceleratorFixture fixture) : LmHeadTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class LmHeadCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : LmHeadTests<CpuSharedMemoryAcceleratorFixture>(fixture);

/// <summary>4-lane warps, narrower than a tile of 8 rows: a lane writes more than one row's logit.</summary>
[Collection(CpuSmallWarpAcceleratorCollection.Name)]
public sealed class LmHeadCpuSmallWarpTests(CpuSmallWarpAcceleratorFixture fixture) : LmHeadTests<CpuSmallWarpAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class LmHeadCudaTests(CudaAcceleratorFixture fixture) : LmHeadTests<CudaAcceleratorFixture>(fixture);
#endif
