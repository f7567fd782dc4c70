using System.Runtime.InteropServices;
using Halo.Core.Formats;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Tests.Weights;
using Halo.Engine.Weights;
using static Halo.Engine.Tests.Backends.Cpu.Kernels.HeadKernelPaths;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

[Collection(KernelSwitchesCollection.Name)]
public sealed unsafe class Int6MatVecTests
{
    /// <summary>
    /// Each path against the exact integer dot of the stored codes, group scales and the input's codes and per-class
    /// shifts: the kernels sum in int32/int64 and round once, so only the final float multiply differs (relative 1e-6).
    /// </summary>
    [Theory]
    [MemberData(nameof(Shapes), MemberType = typeof(HeadKernelPaths))]
    public void Run_RandomMatrix_MatchesExactIntegerDot(KernelPath path, int rows, int cols, int groupSize)
    {
        if (!Supported(path))
        {
            return;
        }

        using var source = new TestMatrix(rows, cols, seed: rows * 31 + cols);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, rows, groupSize);
        using var input = new Input(m, HiddenState(cols, seed: cols));
        var y = new float[rows + 1];
        y[rows] = 12345f;
        fixed (float* py = y)
        {
            Run(path, m, input.Data, py);
        }

        for (int r = 0; r < rows; r++)
        {
            double expected = input.ExactDot(m, r) * ((double)m.RowScale(r) * input.Step);
            Assert.True(Math.Abs(y[r] - expected) <= 1e-5 * Math.Abs(expected) + 1e-12, $"row {r}: {y[r]} vs {expected}");
        }

        Assert.Equal(12345f, y[rows]); // rows of the padded last tile are not written
    }

    /// <summary>
    /// Extreme values: codes at -32 or +31 against inputs of +-127, all classes at the largest shift (the largest
    /// products vpmaddubsw and vpmaddwd see) over the widest row the kernels accept, so int16 pair sums, int32 lanes,
    /// their shifts and the offset correction must not overflow.
    /// </summary>
    [Theory]
    [InlineData(KernelPath.Avx512)]
    [InlineData(KernelPath.Avx2)]
    [InlineData(KernelPath.Scalar)]
    public void Run_ExtremeCodesAtMaxCols_DoesNotOverflow(KernelPath path)
    {
        if (!Supported(path))
        {
            return;
        }

        const int rows = 4, cols = Int6Matrix.MaxCols;
        using var source = ExtremeMatrix(cols);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, rows, 32);
        var h = new float[cols];
        for (int i = 0; i < cols; i++)
        {
            h[i] = i % 32 == 0 ? -1f : 1f;
        }

        using var input = new Input(m, h);
        Assert.All(Enumerable.Range(0, Int6MatVec.OneTokenLanes), j => Assert.Equal(Int6MatVec.MaxShift, input.Shift(j)));
        var y = new float[rows];
        fixed (float* py = y)
        {
            Run(path, m, input.Data, py);
        }

        for (int r = 0; r < rows; r++)
        {
            double expected = input.ExactDot(m, r) * ((double)m.RowScale(r) * input.Step);
            Assert.True(Math.Abs(y[r] - expected) <= 1e-5 * Math.Abs(expected), $"row {r}: {y[r]} vs {expected}");
        }
    }

    /// <summary>Eight tokens in one pass give exactly what one token at a time gives (same integer sums, same final multiply).</summary>
    [Theory]
    [InlineData(37, 2560, 32)]
    [InlineData(9, 200, 64)]
    public void RunBatch_EightTokens_EqualsOneTokenAtATime(int rows, int cols, int groupSize)
    {
        using var source = new TestMatrix(rows, cols, seed: 4);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, rows, groupSize);

        AssertBatchEqualsOneAtATime(m, k => HiddenState(cols, seed: k));
    }

    /// <summary>The batched kernel at the extremes of the widest row (every input at +-127, the class shifts at their
    /// largest), against the one-token kernel that <see cref="Run_ExtremeCodesAtMaxCols_DoesNotOverflow"/> checks;
    /// 4096 columns are the widest whose class shifts stay in int32.</summary>
    [Theory]
    [InlineData(Int6Matrix.MaxCols)]
    [InlineData(4096)]
    public void RunBatch_ExtremeCodesAtMaxCols_EqualsOneTokenAtATime(int cols)
    {
        using var source = ExtremeMatrix(cols);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, 4, 32);

        // Both signs across the tokens.
        AssertBatchEqualsOneAtATime(m, k => Enumerable.Range(0, m.Cols).Select(i => (i % 32 == 0) == (k % 2 == 0) ? -1f : 1f).ToArray());
    }

    /// <summary>
    /// The input's column classes take the finest step that holds them: the outlier's class keeps a plain int8 step,
    /// the others 1/16 of it, and every value comes back within half its class's step.
    /// </summary>
    [Fact]
    public void QuantizeInput_HiddenStateWithOutlier_GivesFineStepsToTheOtherClasses()
    {
        using var source = new TestMatrix(4, 200, seed: 1);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, 4, 32);
        var rng = new Random(2);
        var h = new float[200];
        for (int i = 0; i < h.Length; i++)
        {
            // One outlier, in class 5 (columns 36..39 and 52..55 of each block: one-token lanes 9 and 13).
            h[i] = i == 37 ? 100f : TestMatrix.Gaussian(rng);
        }

        using var input = new Input(m, h);
        Assert.Equal(5, Int6Matrix.ClassOf(37));
        for (int j = 0; j < Int6MatVec.OneTokenLanes; j++)
        {
            Assert.Equal(j is 9 or 13 ? Int6MatVec.MaxShift : 0, input.Shift(j));
        }

        for (int i = 0; i < h.Length; i++)
        {
            float step = input.Step * (1 << input.Shift(i % 128 / 4));
            Assert.True(Math.Abs(h[i] - input.Q(i) * step) <= 0.5001f * step, $"channel {i}");
        }

        for (int i = h.Length; i < m.PaddedCols; i++)
        {
            Assert.Equal(0, input.Q(i));
        }
    }

    /// <summary>
    /// The vectorised input quantization writes exactly the scalar loops' bytes: q, the paired unsigned copy, the
    /// shifts, the group sums and the step, with and without outliers (so with every k), for both group sizes.
    /// </summary>
    [Theory]
    [InlineData(32, 0)]
    [InlineData(32, 1)]
    [InlineData(64, 1)]
    [InlineData(32, 2)]
    public void QuantizeInputAvx512_EqualsTheScalarLoops(int groupSize, int kind)
    {
        if (!Int6MatVec.UseAvx512)
        {
            return;
        }

        const int cols = 2560;
        using var source = new TestMatrix(4, cols, seed: 7);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, 4, groupSize);
        var rng = new Random(kind);
        var h = new float[cols];
        for (int i = 0; i < cols; i++)
        {
            // 0: all zero (no step); 1: a hidden state with outliers of several sizes; 2: values on rounding ties.
            h[i] = kind switch
            {
                0 => 0f,
                1 => i % 301 == 7 ? 40f * (1 + i % 3) : i % 997 == 3 ? -9f : TestMatrix.Gaussian(rng),
                _ => (i % 255 - 127) + 0.5f,
            };
        }

        int bytes = Int6MatVec.InputBytes(m);
        byte[] scalar = new byte[bytes], vector = new byte[bytes];
        fixed (float* ph = h)
        fixed (byte* ps = scalar, pv = vector)
        {
            Int6MatVec.QuantizeInputScalar(m, ph, cols, ps);
            Int6MatVec.QuantizeInputAvx512(m, ph, cols, pv);
        }

        for (int i = 0; i < bytes; i++)
        {
            Assert.True(scalar[i] == vector[i], $"byte {i} of {bytes}: {vector[i]} vs {scalar[i]}");
        }
    }

    [Fact]
    public void Run_TileRange_WritesOnlyThoseRows()
    {
        using var source = new TestMatrix(20, 256, seed: 3);
        using Int6Matrix m = Int6Matrix.Quantize(source.Dense, 20, 32);
        using var input = new Input(m, HiddenState(256, seed: 5));
        var y = new float[20];
        y.AsSpan().Fill(float.NaN);
        fixed (float* py = y)
        {
            Int6MatVec.Run(m, input.Data, py, 2, 4);
        }

        for (int r = 0; r < 20; r++)
        {
            Assert.Equal(r is >= 8 and < 16, !float.IsNaN(y[r]));
        }
    }

    /// <summary>4 rows of <paramref name="cols"/>: row 0 every weight the group extreme -1 (code -32); row 1 +1 with one
    /// -1.0001 per group (codes 31); rows 2, 3 mixed signs.</summary>
    private static TestMatrix ExtremeMatrix(int cols) => new(4, cols, seed: 1, GgmlType.F32, (r, c) => r switch
    {
        0 => -1f,
        1 => c % 32 == 0 ? -1.0001f : 1f,
        2 => c % 2 == 0 ? -1f : 0.97f,
        _ => c % 3 == 0 ? 0.97f : -1f,
    });

    private static void AssertBatchEqualsOneAtATime(Int6Matrix m, Func<int, float[]> hidden)
    {
        const int tokens = Int6MatVec.BatchTokens;
        int bytes = Int6MatVec.InputBytes(m), rows = m.Rows;
        byte* inputs = (byte*)NativeMemory.AlignedAlloc((nuint)(tokens * bytes), 64);
        var batched = new float[tokens * rows];
        var single = new float[tokens * rows];
        try
        {
            fixed (float* pb = batched)
            fixed (float* py = single)
            {
                float** targets = stackalloc float*[tokens];
                for (int k = 0; k < tokens; k++)
                {
                    fixed (float* h = hidden(k))
                    {
                        Int6MatVec.QuantizeInput(m, h, m.Cols, inputs + k * bytes);
                    }

                    targets[k] = pb + k * rows;
                }

                for (int k = 0; k < tokens; k++)
                {
                    Int6MatVec.Run(m, inputs + k * bytes, py + k * rows, 0, m.Tiles);
                }

                // The managed pass, then (where the CPU has it) the AVX-512 VNNI one.
                bool saved = Int6MatVec.UseVnni512;
                try
                {
                    foreach (bool vnni512 in Vnni512Kernels.Usable ? [false, true] : new[] { false })
                    {
                        Array.Clear(batched);
                        Int6MatVec.UseVnni512 = vnni512;
                        Int6MatVec.RunBatch(m, inputs, targets, tokens, 0, m.Tiles);
                        Assert.Equal(single, batched);
                    }
                }
                finally
                {
                    Int6MatVec.UseVnni512 = saved;
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(inputs);
        }
    }

    private static void Run(KernelPath path, Int6Matrix m, byte* input, float* y)
    {
        switch (path)
        {
            case KernelPath.Avx512:
                Int6MatVec.RunAvx512(m, input, y, 0, m.Tiles);
                break;
            case KernelPath.Avx2:
                Int6MatVec.RunAvx2(m, input, y, 0, m.Tiles);
                break;
            default:
                Int6MatVec.RunScalar(m, input, y, 0, m.Tiles);
                break;
        }
    }

    /// <summary>Gaussian channels with a few 20x outliers, so the classes' shifts differ.</summary>
    private static float[] HiddenState(int cols, int seed)
    {
        var rng = new Random(seed);
        var h = new float[cols];
        for (int i = 0; i < cols; i++)
        {
            h[i] = TestMatrix.Gaussian(rng) * (rng.Next(100) == 0 ? 20f : 1f) * (i / 32 % 3 == 2 ? 0.3f : 1f);
        }

        return h;
    }

    /// <summary>One token's input in native memory, read back through its documented layout by plain code.</summary>
    private sealed class Input : IDisposable
    {
        private readonly Int6Matrix _m;
        private readonly float[] _h;

        public Input(Int6Matrix m, float[] h)
        {
            _m = m;
            _h = h;
            Data = (byte*)NativeMemory.AlignedAlloc((nuint)Int6MatVec.InputBytes(m), 64);
            new Span<byte>(Data, Int6MatVec.InputBytes(m)).Fill(0x5A);   // every byte the kernels read must be written
            fixed (float* ph = h)
            {
                Int6MatVec.QuantizeInput(m, ph, h.Length, Data);
            }
        }

        public byte* Data { get; }

        public float Step => *(float*)(Data + Int6MatVec.InputBytes(_m) - 64);

        public int Q(int c) => ((sbyte*)Data)[c];

        /// <summary>k of column class j: the ulongs after the q codes and their unsigned copies (q + 128).</summary>
        public int Shift(int j) => (int)((ulong*)(Data + 2 * _m.PaddedCols))[j];

        /// <summary>sum over columns of code * groupScale * q * 2^k of the column's class, in exact integers.</summary>
        public long ExactDot(Int6Matrix m, int r)
        {
            Assert.Equal(_h.Length, m.Cols);
            long dot = 0;
            for (int c = 0; c < m.Cols; c++)
            {
                dot += ((long)m.Code(r, c) * m.GroupScale(r, c / m.GroupSize) * Q(c)) << Shift(c % 128 / 4);
            }

            return dot;
        }

        public void Dispose() => NativeMemory.AlignedFree(Data);
    }
}
