using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Tests.Reference;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

[Collection(KernelSwitchesCollection.Name)]
public sealed unsafe class TernaryMatMulTests
{
    public enum Path
    {
        Portable,
        Avx2,
        Avx512,
    }

    [Theory]
    [InlineData(Path.Portable, ActivationScaling.PerBlock)]
    [InlineData(Path.Avx2, ActivationScaling.PerBlock)]
    [InlineData(Path.Avx512, ActivationScaling.PerBlock)]
    [InlineData(Path.Avx512, ActivationScaling.PerToken)]
    [InlineData(Path.Portable, ActivationScaling.PerToken)]
    public void Run_RandomMatrix_MatchesExactIntegerDotProducts(Path path, ActivationScaling scaling)
    {
        if ((path == Path.Avx2 && !Avx2.IsSupported) || (path == Path.Avx512 && !Avx512BW.IsSupported))
        {
            return;
        }

        const int rows = 37, cols = 768, tokens = 3;
        var rng = new Random(11);
        var values = new sbyte[rows * cols];
        var scales = new float[rows * cols / 256];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(rng.Next(3) - 1);
        }

        for (int i = 0; i < scales.Length; i++)
        {
            scales[i] = 0.5f + (float)rng.NextDouble();
        }

        using TernaryMatrix w = TernaryMatrix.FromValues("w", values, scales, rows, cols, 0.75f);
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(rng.NextDouble() * 4 - 2);
        }

        using var qx = new QuantizedActivations(tokens, cols);
        float* y = (float*)NativeMemory.Alloc(tokens * rows * sizeof(float));
        try
        {
            fixed (float* px = x)
            {
                qx.Quantize(px, tokens, cols, scaling);
            }

            switch (path)
            {
                case Path.Portable: TernaryMatMul.RunPortable(w, qx, y, rows, 0, w.Tiles); break;
                case Path.Avx2: TernaryMatMul.RunAvx2(w, qx, y, rows, 0, w.Tiles); break;
                default: TernaryMatMul.RunAvx512(w, qx, y, rows, 0, w.Tiles); break;
            }

            for (int t = 0; t < tokens; t++)
            {
                (sbyte[] q, float[] d) = ReferenceModel.Quantize(x.AsSpan(t * cols, cols).ToArray(), scaling);
                for (int r = 0; r < rows; r++)
                {
                    double expected = 0;
                    for (int b = 0; b < cols / 256; b++)
                    {
                        long dot = 0;
                        for (int j = 0; j < 256; j++)
                        {
                            dot += values[r * cols + b * 256 + j] * q[b * 256 + j];
                        }

                        expected += dot * (double)(d[b] * scales[r * cols / 256 + b]);
                    }

                    expected *= 0.75;
                    Assert.True(Math.Abs(y[t * rows + r] - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"token {t} row {r}: {y[t * rows + r]} vs {expected}");
                }
            }
        }
        finally
        {
            NativeMemory.Free(y);
        }
    }

    public enum RowScaledPath
    {
        Avx512Gfni,
        Avx512Shifts,
        Avx512Vnni,
        Avx2Vnni,
        Avx2MultiplyAdd,
    }

    [Theory]
    [InlineData(RowScaledPath.Avx512Gfni, 1, 4096)]
    [InlineData(RowScaledPath.Avx512Gfni, 4, 4096)]
    [InlineData(RowScaledPath.Avx512Gfni, 11, 4096)]
    [InlineData(RowScaledPath.Avx512Gfni, 23, 4096)]
    [InlineData(RowScaledPath.Avx512Shifts, 11, 4096)]
    [InlineData(RowScaledPath.Avx512Vnni, 4, 4096)]
    [InlineData(RowScaledPath.Avx512Vnni, 23, 4096)]
    [InlineData(RowScaledPath.Avx512Vnni, 17, 6912)]
    [InlineData(RowScaledPath.Avx512Vnni, 8, 4352)]
    [InlineData(RowScaledPath.Avx512Vnni, 6, 2560)]
    [InlineData(RowScaledPath.Avx512Vnni, 11, 4096)]
    [InlineData(RowScaledPath.Avx512Vnni, 3, 2560)]
    [InlineData(RowScaledPath.Avx512Vnni, 7, 6912)]
    [InlineData(RowScaledPath.Avx2Vnni, 1, 4096)]
    [InlineData(RowScaledPath.Avx2Vnni, 11, 4096)]
    [InlineData(RowScaledPath.Avx2Vnni, 23, 4096)]
    [InlineData(RowScaledPath.Avx2MultiplyAdd, 11, 4096)]
    public void RunRowScaled_OneScalePerRow_MatchesExactIntegerDotProducts(RowScaledPath path, int tokens, int cols)
    {
        bool avx512 = path is RowScaledPath.Avx512Gfni or RowScaledPath.Avx512Shifts or RowScaledPath.Avx512Vnni;
        if ((avx512 && !Avx512BW.IsSupported) || !Avx2.IsSupported
            || (path == RowScaledPath.Avx512Gfni && !Gfni.V512.IsSupported) || (path == RowScaledPath.Avx2Vnni && !AvxVnni.IsSupported)
            || (path == RowScaledPath.Avx512Vnni && !Vnni512Kernels.CpuSupports))
        {
            return;
        }

        // 69 rows: 17 whole tiles, more than one call of the GEMM's tile kernel takes, and a ragged last tile; 4096
        // columns = 16 blocks: the 16-bit partial sums are widened mid-row.
        // 23 tokens: 5 groups of 4 through the GEMM, then 3 through the one-token path. With VNNI, groups of 8 come
        // first, and rows longer than 4096 columns go through them in column ranges (6912: 13 + 14 blocks; 4352: 8 + 9);
        // a last group of 6 or 7 tokens (23, 6, 7) is padded to 8, and one of 3 (11, 3) to 4, from the buffer's rows
        // past the batch, which hold leftovers (here: an earlier, longer batch's).
        const int rows = 69;
        int blocks = cols / 256;
        var rng = new Random(12);
        var values = new sbyte[rows * cols];
        var scales = new float[rows * blocks];
        for (int r = 0; r < rows; r++)
        {
            float rowScale = 0.5f + (float)rng.NextDouble();
            scales.AsSpan(r * blocks, blocks).Fill(rowScale);
            for (int c = 0; c < cols; c++)
            {
                // Row 0 is all +1 and the activations saturate at -128 below: the largest partial sums possible.
                values[r * cols + c] = r == 0 ? (sbyte)1 : (sbyte)(rng.Next(3) - 1);
            }
        }

        using TernaryMatrix w = TernaryMatrix.FromValues("w", values, scales, rows, cols, 0.75f);
        Assert.True(w.RowScales != null);
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = i % cols < 512 && i / cols == 0 ? -2f : (float)(rng.NextDouble() * 4 - 2);
        }

        int capacity = (tokens + 7) / 8 * 8;
        using var qx = new QuantizedActivations(capacity, cols);
        float* y = (float*)NativeMemory.Alloc((nuint)(tokens * rows * sizeof(float)));
        try
        {
            var earlier = new float[capacity * cols];
            for (int i = 0; i < earlier.Length; i++)
            {
                earlier[i] = (float)(rng.NextDouble() * 4 - 2);
            }

            fixed (float* pe = earlier, px = x)
            {
                qx.Quantize(pe, capacity, cols, ActivationScaling.PerToken);
                qx.Quantize(px, tokens, cols, ActivationScaling.PerToken);
            }

            (bool gfni, bool vnni, bool vnni512) = (TernaryMatMul.UseGfni, TernaryMatMul.UseAvxVnni, TernaryMatMul.UseVnni512);
            try
            {
                TernaryMatMul.UseGfni = path == RowScaledPath.Avx512Gfni;
                TernaryMatMul.UseAvxVnni = path == RowScaledPath.Avx2Vnni;
                TernaryMatMul.UseVnni512 = path == RowScaledPath.Avx512Vnni;
                if (avx512)
                {
                    TernaryMatMul.RunRowScaledAvx512(w, qx, y, rows, 0, w.Tiles);
                }
                else
                {
                    TernaryMatMul.RunRowScaledAvx2(w, qx, y, rows, 0, w.Tiles);
                }
            }
            finally
            {
                (TernaryMatMul.UseGfni, TernaryMatMul.UseAvxVnni, TernaryMatMul.UseVnni512) = (gfni, vnni, vnni512);
            }

            for (int t = 0; t < tokens; t++)
            {
                (sbyte[] q, float[] d) = ReferenceModel.Quantize(x.AsSpan(t * cols, cols).ToArray(), ActivationScaling.PerToken);
                for (int r = 0; r < rows; r++)
                {
                    long dot = 0;
                    for (int j = 0; j < cols; j++)
                    {
                        dot += values[r * cols + j] * q[j];
                    }

                    double expected = dot * (double)d[0] * scales[r * blocks] * 0.75;
                    Assert.True(Math.Abs(y[t * rows + r] - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"token {t} row {r}: {y[t * rows + r]} vs {expected}");
                }
            }
        }
        finally
        {
            NativeMemory.Free(y);
        }
    }

    [Theory]
    [InlineData(ActivationScaling.PerBlock)]
    [InlineData(ActivationScaling.PerToken)]
    public void Quantize_RandomRows_MatchesReferenceQuantization(ActivationScaling scaling)
    {
        const int cols = 512, tokens = 2;
        var rng = new Random(5);
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(rng.NextDouble() * 6 - 3) * (i % 256 < 128 ? 1 : 0.01f);
        }

        x[300] = 0; // an all-zero block exercises the zero-scale path below
        using var qx = new QuantizedActivations(tokens, cols);
        fixed (float* px = x)
        {
            qx.Quantize(px, tokens, cols, scaling);
        }

        for (int t = 0; t < tokens; t++)
        {
            (sbyte[] q, float[] d) = ReferenceModel.Quantize(x.AsSpan(t * cols, cols).ToArray(), scaling);
            for (int i = 0; i < cols; i++)
            {
                Assert.Equal(q[i], qx.At(t, i));
            }

            for (int b = 0; b < cols / 256; b++)
            {
                Assert.Equal(d[b], qx.D[t * 2 + b]);
                int sum = 0;
                for (int j = 0; j < 256; j++)
                {
                    sum += q[b * 256 + j];
                }

                Assert.Equal(sum, qx.Sum[t * 2 + b]);
            }
        }
    }

    [Fact]
    public void Quantize_ZeroBlock_GivesZeroScaleAndCodes()
    {
        var x = new float[256];
        using var qx = new QuantizedActivations(1, 256);
        fixed (float* px = x)
        {
            qx.Quantize(px, 1, 256, ActivationScaling.PerBlock);
        }

        Assert.Equal(0f, qx.D[0]);
        Assert.Equal(0, qx.Sum[0]);
    }
}
