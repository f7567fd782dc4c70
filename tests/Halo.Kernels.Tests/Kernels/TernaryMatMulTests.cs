using Halo.Kernels.Layout;

namespace Halo.Kernels.Tests.Kernels;

/// <summary>The ternary matmul kernel (one token, and tiles of up to 8) against a scalar double-precision product.</summary>
public abstract class TernaryMatMulTests<TFixture>(TFixture fixture)
    where TFixture : AcceleratorFixture
{
    private const int K = 2816;        // 176 words a row: lanes take four words a step, then one or two more
    private const int N = 37;          // not a multiple of the 4 rows per group: the tail group is partly idle
    private const float TensorScale = 0.75f;

    /// <summary>y[t, n] = s * sum_k w[n, k] * blockScale[n, k / 256] * q[t, k] * activationScale[t, k / block].</summary>
    internal static double[] Reference(sbyte[] w, float[] blockScales, sbyte[] q, float[] activationScales, int tokens, int n, int k, int activationBlock, float tensorScale)
    {
        var y = new double[tokens * n];
        for (int t = 0; t < tokens; t++)
        {
            for (int row = 0; row < n; row++)
            {
                double sum = 0;
                for (int i = 0; i < k; i++)
                {
                    sum += w[row * k + i] * (double)blockScales[row * (k / 256) + i / 256] * q[t * k + i] * activationScales[t * (k / activationBlock) + i / activationBlock];
                }

                y[t * n + row] = sum * tensorScale;
            }
        }

        return y;
    }

    [Theory]
    [InlineData(1, 256)]    // decode, one stream: the one-token specialisation, llama.cpp activation blocks
    [InlineData(1, K)]      // the same with a per-token activation scale
    [InlineData(2, 256)]    // a partial tile
    [InlineData(8, K)]      // one whole tile: a batched decode step of 8 streams
    [InlineData(19, 256)]   // prefill: two whole tiles and a tail of 3
    [InlineData(11, K)]
    public void TernaryMatMul_RandomWeights_MatchesScalarReference(int tokens, int activationBlock)
    {
        sbyte[] w = TestData.Ternary(2, N * K);
        float[] blockScales = TestData.Floats(3, N * K / 256);
        float[] x = TestData.Floats(4, tokens * K, 3f);
        var (q, activationScales) = NormQuantizeTests<TFixture>.QuantizeReference(x, tokens, K, activationBlock);

        using var matrix = new DeviceTernaryMatrix(fixture.Accelerator, TernaryLayout.FromValues(w, blockScales, N, K), TensorScale);
        using var packed = fixture.Upload(Pack(q));
        using var scales = fixture.Upload(activationScales);
        using var output = fixture.Allocate<float>(tokens * N);
        fixture.Kernels.TernaryMatMul(matrix, packed.View, scales.View, [output.View], tokens, activationBlock);

        double[] expected = Reference(w, blockScales, q, activationScales, tokens, N, K, activationBlock, TensorScale);
        TestData.AssertClose(expected, output.GetAsArray1D(), 1e-4);
    }

    [Theory]
    [InlineData(-128)]   // every activation at an int8 extreme, every weight +1 or -1 (by row): the byte sums' largest lanes
    [InlineData(127)]
    public void TernaryMatMul_ExtremeValues_MatchesScalarReference(int activation)
    {
        const int tokens = 3;
        var w = new sbyte[N * K];
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = (sbyte)(i / K % 2 == 0 ? 1 : -1);
        }

        float[] blockScales = TestData.Floats(3, N * K / 256);
        var q = new sbyte[tokens * K];
        Array.Fill(q, (sbyte)activation);
        float[] activationScales = [0.5f, 0.25f, 1f];

        using var matrix = new DeviceTernaryMatrix(fixture.Accelerator, TernaryLayout.FromValues(w, blockScales, N, K), TensorScale);
        using var packed = fixture.Upload(Pack(q));
        using var scales = fixture.Upload(activationScales);
        using var output = fixture.Allocate<float>(tokens * N);
        fixture.Kernels.TernaryMatMul(matrix, packed.View, scales.View, [output.View], tokens, K);

        double[] expected = Reference(w, blockScales, q, activationScales, tokens, N, K, K, TensorScale);
        TestData.AssertClose(expected, output.GetAsArray1D(), 1e-4);
    }

    [Theory]
    [InlineData(1)]    // one token
    [InlineData(10)]   // a whole tile and a partial one
    public void TernaryMatMul_Accumulate_AddsToOutput(int tokens)
    {
        sbyte[] w = TestData.Ternary(5, N * K);
        float[] blockScales = TestData.Floats(6, N * K / 256);
        var (q, activationScales) = NormQuantizeTests<TFixture>.QuantizeReference(TestData.Floats(7, tokens * K, 3f), tokens, K, 256);
        float[] residual = TestData.Floats(8, tokens * N, 5f);

        using var matrix = new DeviceTernaryMatrix(fixture.Accelerator, TernaryLayout.FromValues(w, blockScales, N, K), TensorScale);
        using var packed = fixture.Upload(Pack(q));
        using var scales = fixture.Upload(activationScales);
        using var product = fixture.Allocate<float>(tokens * N);
        using var output = fixture.Upload(residual);
        fixture.Kernels.TernaryMatMul(matrix, packed.View, scales.View, [product.View], tokens, 256);
        fixture.Kernels.TernaryMatMul(matrix, packed.View, scales.View, [output.View], tokens, 256, accumulate: true);

        // x + y rounded once, as the residual add of the separate product would
        float[] y = product.GetAsArray1D();
        float[] expected = new float[residual.Length];
        for (int i = 0; i < expected.Length; i++)
        {
            expected[i] = residual[i] + y[i];
        }

        Assert.Equal(expected, output.GetAsArray1D());
    }

    [Theory]
    [InlineData(1)]    // one launch over the three stacked matrices
    [InlineData(5)]    // a partial tile
    [InlineData(12)]   // a whole tile and a partial one
    public void TernaryMatMul_StackedMatrices_EachMatchesItsReference(int tokens)
    {
        int[] rows = [37, 9, 14];
        float[] tensorScales = [0.75f, 1.5f, 0.25f];
        var layouts = new TernaryLayout[rows.Length];
        var weights = new sbyte[rows.Length][];
        var blockScales = new float[rows.Length][];
        for (int m = 0; m < rows.Length; m++)
        {
            weights[m] = TestData.Ternary(20 + m, rows[m] * K);
            blockScales[m] = TestData.Floats(30 + m, rows[m] * K / 256);
            layouts[m] = TernaryLayout.FromValues(weights[m], blockScales[m], rows[m], K);
        }

        var (q, activationScales) = NormQuantizeTests<TFixture>.QuantizeReference(TestData.Floats(9, tokens * K, 3f), tokens, K, K);
        using var matrix = new DeviceTernaryMatrix(fixture.Accelerator, layouts, tensorScales);
        using var packed = fixture.Upload(Pack(q));
        using var scales = fixture.Upload(activationScales);
        using var out0 = fixture.Allocate<float>(tokens * rows[0]);
        using var out1 = fixture.Allocate<float>(tokens * rows[1]);
        using var out2 = fixture.Allocate<float>(tokens * rows[2]);
        fixture.Kernels.TernaryMatMul(matrix, packed.View, scales.View, [out0.View, out1.View, out2.View], tokens, K);

        float[][] outputs = [out0.GetAsArray1D(), out1.GetAsArray1D(), out2.GetAsArray1D()];
        for (int m = 0; m < rows.Length; m++)
        {
            double[] expected = Reference(weights[m], blockScales[m], q, activationScales, tokens, rows[m], K, K, tensorScales[m]);
            TestData.AssertClose(expected, outputs[m], 1e-4);
        }
    }

    /// <summary>Four int8 per int, element e in byte e % 4, as the kernels read them.</summary>
    private static int[] Pack(sbyte[] q)
    {
        var packed = new int[q.Length / 4];
        for (int i = 0; i < q.Length; i++)
        {
            packed[i / 4] |= (byte)q[i] << (8 * (i % 4));
        }

        return packed;
    }
}

[Collection(CpuAcceleratorCollection.Name)]
public sealed class TernaryMatMulCpuTests(CpuAcceleratorFixture fixture) : TernaryMatMulTests<CpuAcceleratorFixture>(fixture);

[Collection(CpuSharedMemoryAcceleratorCollection.Name)]
public sealed class TernaryMatMulCpuSharedMemoryTests(CpuSharedMemoryAcceleratorFixture fixture) : TernaryMatMulTests<CpuSharedMemoryAcceleratorFixture>(fixture);

/// <summary>4-lane warps, narrower than a tile of 8 tokens: a lane writes more than one token's output.</summary>
[Collection(CpuSmallWarpAcceleratorCollection.Name)]
public sealed class TernaryMatMulCpuSmallWarpTests(CpuSmallWarpAcceleratorFixture fixture) : TernaryMatMulTests<CpuSmallWarpAcceleratorFixture>(fixture);

#if HALO_CUDA
[Collection(CudaAcceleratorCollection.Name)]
public sealed class TernaryMatMulCudaTests(CudaAcceleratorFixture fixture) : TernaryMatMulTests<CudaAcceleratorFixture>(fixture);
#endif
