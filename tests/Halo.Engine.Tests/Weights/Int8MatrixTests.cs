using System.Runtime.InteropServices;
using Halo.Core.Formats;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Weights;

public sealed unsafe class Int8MatrixTests
{
    [Theory]
    [InlineData(GgmlType.F16, 1100, 320)]  // the fused AVX-512 F16 path, three pieces of rows
    [InlineData(GgmlType.F16, 40, 264)]    // columns not a multiple of 16: the buffered path
    [InlineData(GgmlType.BF16, 600, 256)]
    [InlineData(GgmlType.F32, 30, 256)]
    public void Quantize_AnyPath_EqualsScalarReferenceExactly(GgmlType type, int rows, int cols)
    {
        float[] w = RandomWeights(rows, cols, seed: rows);
        byte[] bytes = Encode(w, type);
        fixed (byte* p = bytes)
        {
            DenseMatrix dense = DenseMatrix.FromTensor("f", new TensorView("w", type, [cols, rows], p, bytes.Length), cols);
            using Int8Matrix m = Int8Matrix.Quantize(dense, rows);
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                dense.ReadRow(r, row);
                (sbyte[] q, float scale, int sum) = ScalarQuantize(row);
                Assert.True(new ReadOnlySpan<sbyte>(m.Q + (long)r * cols, cols).SequenceEqual(q), $"row {r}");
                Assert.Equal(scale, m.Scales[r]);
                Assert.Equal(sum, m.Sums[r]);
            }
        }
    }

    [Fact]
    public void Quantize_Consumed_ReportsEverySourceByteOnce()
    {
        const int rows = 1500, cols = 256;
        byte[] bytes = Encode(RandomWeights(rows, cols, seed: 3), GgmlType.F16);
        fixed (byte* p = bytes)
        {
            DenseMatrix dense = DenseMatrix.FromTensor("f", new TensorView("w", GgmlType.F16, [cols, rows], p, bytes.Length), cols);
            var seen = new int[bytes.Length];
            nint origin = (nint)p;
            using Int8Matrix m = Int8Matrix.Quantize(dense, rows - 7, (start, length) =>
            {
                for (long i = start - origin; i < start - origin + length; i++)
                {
                    Interlocked.Increment(ref seen[i]);
                }
            });
            long quantizedBytes = (long)(rows - 7) * cols * 2;
            for (long i = 0; i < seen.Length; i++)
            {
                Assert.Equal(i < quantizedBytes ? 1 : 0, seen[i]);
            }
        }
    }

    // What Quantize computed before it was fused and split into pieces: max|w| over the float row, scale =
    // max / 127, q = round-half-even(w * (127 / max)), sum of q.
    private static (sbyte[] Q, float Scale, int Sum) ScalarQuantize(float[] row)
    {
        float amax = 0f;
        foreach (float x in row)
        {
            amax = MathF.Max(amax, MathF.Abs(x));
        }

        float inverse = amax > 0 ? 127f / amax : 0f;
        var q = new sbyte[row.Length];
        int sum = 0;
        for (int i = 0; i < row.Length; i++)
        {
            int v = (int)MathF.Round(row[i] * inverse);
            q[i] = (sbyte)v;
            sum += v;
        }

        return (q, amax / 127f, sum);
    }

    // Random weights with the awkward cases: an all-zero row, a row of subnormal halves, exact ties after scaling.
    private static float[] RandomWeights(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = (float)(Half)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-3, 1)));
        }

        Array.Clear(w, 0, cols);
        for (int i = 0; i < cols; i++)
        {
            w[cols + i] = (float)BitConverter.UInt16BitsToHalf((ushort)(1 + i % 1000)) * (i % 2 == 0 ? 1 : -1);
            w[2 * cols + i] = (i % 5 - 2) * 0.5f;
        }

        return w;
    }

    private static byte[] Encode(float[] w, GgmlType type) => type switch
    {
        GgmlType.F32 => MemoryMarshal.AsBytes(w.AsSpan()).ToArray(),
        GgmlType.F16 => MemoryMarshal.AsBytes(Array.ConvertAll(w, x => (Half)x).AsSpan()).ToArray(),
        _ => MemoryMarshal.AsBytes(Array.ConvertAll(w, x => (ushort)(BitConverter.SingleToUInt32Bits(x) >> 16)).AsSpan()).ToArray(),
    };
}
