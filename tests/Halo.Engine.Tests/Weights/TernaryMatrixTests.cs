using Halo.Core.Formats;
using Halo.Engine.Tests.Reference;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Weights;

public sealed unsafe class TernaryMatrixTests
{
    [Theory]
    [InlineData(GgmlType.TQ2_0)]
    [InlineData(GgmlType.TQ1_0)]
    public void FromTensor_GgufBlocks_DecodesEveryWeightAndScale(GgmlType type)
    {
        const int rows = 7, cols = 512;
        var rng = new Random(3);
        var values = new sbyte[rows * cols];
        var scales = new float[rows * cols / 256];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(rng.Next(3) - 1);
        }

        for (int i = 0; i < scales.Length; i++)
        {
            scales[i] = (float)(Half)(0.5f + (float)rng.NextDouble());
        }

        byte[] bytes = type == GgmlType.TQ2_0 ? TestModelSource.EncodeTq2(values, scales) : TestModelSource.EncodeTq1(values, scales);
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", type, [cols, rows], p, bytes.Length);
            using TernaryMatrix m = TernaryMatrix.FromTensor("f", view, 0.25f);
            Assert.Equal(2, m.Tiles);
            Assert.Equal(0.25f, m.TensorScale);
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < cols; c++)
                {
                    float expected = values[r * cols + c] * scales[(r * cols + c) / 256];
                    Assert.Equal(expected, m.Get(r, c));
                    (int value, float scale) = ReferenceModel.Weight(view, r, c);
                    Assert.Equal(expected, value * scale);
                }
            }
        }
    }

    [Fact]
    public void FromValues_OneScalePerRow_HasRowScales()
    {
        const int rows = 6, cols = 768;
        sbyte[] values = RandomTernary(rows, cols, seed: 5);
        var scales = new float[rows * 3];
        for (int r = 0; r < rows; r++)
        {
            scales.AsSpan(r * 3, 3).Fill(0.5f + r);
        }

        // Row 2's middle block is all zeros with another scale (as TQ2_0 writes d = 0 for it): it does not count.
        values.AsSpan(2 * cols + 256, 256).Clear();
        scales[2 * 3 + 1] = 0f;
        // Row 4 is all zeros.
        values.AsSpan(4 * cols, cols).Clear();
        scales.AsSpan(4 * 3, 3).Fill(9f);
        using TernaryMatrix m = TernaryMatrix.FromValues("w", values, scales, rows, cols, 1f);
        Assert.True(m.RowScales != null);
        for (int r = 0; r < rows; r++)
        {
            Assert.Equal(r == 4 ? 0f : 0.5f + r, m.RowScales[r]);
        }
    }

    [Fact]
    public void FromValues_BlockScalesDifferWithinARow_HasNoRowScales()
    {
        const int rows = 3, cols = 512;
        var scales = new float[rows * 2];
        scales.AsSpan().Fill(1f);
        scales[5] = 1.25f;
        using TernaryMatrix m = TernaryMatrix.FromValues("w", RandomTernary(rows, cols, seed: 6), scales, rows, cols, 1f);
        Assert.True(m.RowScales == null);
    }

    private static sbyte[] RandomTernary(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var values = new sbyte[rows * cols];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(rng.Next(3) - 1);
        }

        values[0] = 1;
        return values;
    }

    [Fact]
    public void FromTensor_ShortData_ThrowsInvalidModel()
    {
        var bytes = new byte[66 * 3];
        fixed (byte* p = bytes)
        {
            var view = new TensorView("blk.0.attn_q.weight", GgmlType.TQ2_0, [256, 4], p, bytes.Length);
            var e = Assert.Throws<InvalidModelException>(() => TernaryMatrix.FromTensor("model.gguf", view, 1f));
            Assert.Contains("blk.0.attn_q.weight", e.Message);
            Assert.Contains("model.gguf", e.Message);
        }
    }

    [Fact]
    public void FromTensor_ColumnsNotMultipleOf256_ThrowsInvalidModel()
    {
        var bytes = new byte[1000];
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", GgmlType.TQ2_0, [100, 4], p, bytes.Length);
            Assert.Throws<InvalidModelException>(() => TernaryMatrix.FromTensor("f", view, 1f));
        }
    }

    [Fact]
    public void FromTensor_UnsupportedType_ThrowsInvalidModel()
    {
        var bytes = new byte[4096];
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", GgmlType.Q8_0, [256, 4], p, bytes.Length);
            var e = Assert.Throws<InvalidModelException>(() => TernaryMatrix.FromTensor("f", view, 1f));
            Assert.Contains("Q8_0", e.Message);
        }
    }

    [Theory]
    [InlineData(GgmlType.TQ2_0, 13, 768)]
    [InlineData(GgmlType.TQ2_0, 64, 256)]
    [InlineData(GgmlType.TQ1_0, 9, 512)]
    public void FromTensor_FastRepack_EqualsScalarStoreByteForByte(GgmlType type, int rows, int cols)
    {
        (sbyte[] values, float[] scales) = RandomTernaryWithScales(rows, cols, seed: rows + cols);
        byte[] bytes = type == GgmlType.TQ2_0 ? TestModelSource.EncodeTq2(values, scales) : TestModelSource.EncodeTq1(values, scales);
        using TernaryMatrix scalar = TernaryMatrix.FromValues("w", values, scales, rows, cols, 1f);
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", type, [cols, rows], p, bytes.Length);
            using TernaryMatrix fast = TernaryMatrix.FromTensor("f", view, 1f);
            AssertSameLayout(scalar, fast);
        }
    }

    [Fact]
    public void RepackTiles_ArenaPiecesInAnyOrder_EqualFromTensor()
    {
        const int rows = 21, cols = 512;
        (sbyte[] values, float[] scales) = RandomTernaryWithScales(rows, cols, seed: 5);
        for (int i = 0; i < scales.Length; i++)
        {
            scales[i] = scales[i / (cols / 256) * (cols / 256)]; // one scale per row, so row scales exist
        }

        byte[] bytes = TestModelSource.EncodeTq2(values, scales);
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", GgmlType.TQ2_0, [cols, rows], p, bytes.Length);
            using TernaryMatrix whole = TernaryMatrix.FromTensor("f", view, 0.5f);
            using var arena = new WeightArena(TernaryMatrix.ArenaBytes(rows, cols) * 2);
            _ = arena.Take(100); // a slice before it, so the matrix does not start at the arena's start
            using TernaryMatrix pieces = TernaryMatrix.Allocate("f", view, 0.5f, arena);
            pieces.RepackTiles(view, 4, 6);
            pieces.RepackTiles(view, 0, 1);
            pieces.RepackTiles(view, 1, 4);
            pieces.FinishRepack();
            Assert.True(whole.RowScales != null);
            AssertSameLayout(whole, pieces);
            Assert.Equal(0.5f, pieces.TensorScale);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FinishRepack_OverAReadOnlyCopyOfARepack_TakesItsStoredRowScales(bool oneScalePerRow)
    {
        const int rows = 9, cols = 512;
        (sbyte[] values, float[] scales) = RandomTernaryWithScales(rows, cols, seed: 6);
        for (int i = 0; oneScalePerRow && i < scales.Length; i++)
        {
            scales[i] = scales[i / (cols / 256) * (cols / 256)];
        }

        byte[] bytes = TestModelSource.EncodeTq2(values, scales);
        long arenaBytes = TernaryMatrix.ArenaBytes(rows, cols);
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", GgmlType.TQ2_0, [cols, rows], p, bytes.Length);
            using var arena = new WeightArena(arenaBytes);
            using TernaryMatrix repacked = TernaryMatrix.Allocate("f", view, 1f, arena);
            repacked.RepackTiles(view, 0, repacked.Tiles);
            repacked.FinishRepack();

            // What a repack cache maps back: the same bytes, read-only.
            byte[] copy = new ReadOnlySpan<byte>(arena.Start, (int)arenaBytes).ToArray();
            fixed (byte* c = copy)
            {
                using var cached = WeightArena.Over(c, arenaBytes, new MemoryStream());
                using TernaryMatrix reloaded = TernaryMatrix.Allocate("f", view, 1f, cached);
                reloaded.FinishRepack();

                Assert.Equal(oneScalePerRow, reloaded.RowScales != null);
                AssertSameLayout(repacked, reloaded);
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    public void FromTensor_MasterWeights_TernarizesWithMeanAbsScale(GgmlType type)
    {
        const int rows = 6, cols = 256;
        var rng = new Random(8);
        var w = new float[rows * cols];
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = (float)(Half)(rng.NextDouble() * 2 - 1);
        }

        double sum = 0;
        foreach (float x in w)
        {
            sum += Math.Abs(x);
        }

        float s = (float)(sum / w.Length);
        byte[] bytes = type == GgmlType.F32 ? MemoryMarshalBytes(w) : MemoryMarshalBytes(Array.ConvertAll(w, x => (Half)x));
        fixed (byte* p = bytes)
        {
            var view = new TensorView("w", type, [cols, rows], p, bytes.Length);
            using TernaryMatrix m = TernaryMatrix.FromTensor("f", view, 1f);
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < cols; c++)
                {
                    Assert.Equal(Math.Clamp(MathF.Round(w[r * cols + c] / s), -1f, 1f) * s, m.Get(r, c));
                }
            }
        }
    }

    private static byte[] MemoryMarshalBytes<T>(T[] values) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static (sbyte[] Values, float[] Scales) RandomTernaryWithScales(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var values = new sbyte[rows * cols];
        var scales = new float[rows * cols / 256];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(rng.Next(3) - 1);
        }

        for (int i = 0; i < scales.Length; i++)
        {
            scales[i] = (float)(Half)(0.01f + (float)rng.NextDouble());
        }

        return (values, scales);
    }

    // Codes, block scales and row scales of the whole padded layout (rows past Rows included) are identical.
    private static void AssertSameLayout(TernaryMatrix expected, TernaryMatrix actual)
    {
        Assert.Equal((expected.Rows, expected.Cols, expected.Tiles), (actual.Rows, actual.Cols, actual.Tiles));
        long entries = (long)expected.Tiles * expected.Blocks * TernaryMatrix.TileRows;
        Assert.True(new ReadOnlySpan<byte>(expected.Codes, (int)(entries * TernaryMatrix.BlockBytes))
            .SequenceEqual(new ReadOnlySpan<byte>(actual.Codes, (int)(entries * TernaryMatrix.BlockBytes))));
        Assert.True(new ReadOnlySpan<float>(expected.Scales, (int)entries).SequenceEqual(new ReadOnlySpan<float>(actual.Scales, (int)entries)));
        Assert.Equal(expected.RowScales == null, actual.RowScales == null);
        if (expected.RowScales != null)
        {
            int rows = expected.Tiles * TernaryMatrix.TileRows;
            Assert.True(new ReadOnlySpan<float>(expected.RowScales, rows).SequenceEqual(new ReadOnlySpan<float>(actual.RowScales, rows)));
        }
    }
}
