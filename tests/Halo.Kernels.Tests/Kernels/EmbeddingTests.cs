using Halo.Kernels.Layout;

namespace Halo.Kernels.Tests.Kernels;

public abstract class EmbeddingTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    [Fact]
    public void Kernel_TokenIds_CopiesTheirF16RowsAsFloat()
    {
        const int vocab = 11, hidden = 70;
        Half[] table = TestData.Floats(90, vocab * hidden, 3f).Select(v => (Half)v).ToArray();
        int[] tokens = [3, 0, 10, 3];
        using var tableBuffer = fixture.Upload(HalfTable.Pack(table));
        using var tokenBuffer = fixture.Upload(tokens);
        using var output = fixture.Allocate<float>(tokens.Length * hidden);
        fixture.Kernels.Embedding(tableBuffer.View, tokenBuffer.View, output.View, tokens.Length, hidden);

        var expected = new float[tokens.Length * hidden];
        for (int t = 0; t < tokens.Length; t++)
        {
            for (int i = 0; i < hidden; i++)
            {
                expected[t * hidden + i] = (float)table[tokens[t] * hidden + i];
            }
        }

        Assert.Equal(expected, output.GetAsArray1D());
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class EmbeddingCpuTests(CpuAcceleratorFixture fixture) : EmbeddingTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class EmbeddingCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : EmbeddingTests<CpuSharedMemoryAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class EmbeddingCudaTests(CudaAcceleratorFixture fixture) : EmbeddingTests<CudaAcceleratorFixture>(fixture);
#endif
