using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Core.Formats;

namespace Halo.Engine.Weights;

/// <summary>
/// A dense matrix [rows, cols] quantized to int8 with one scale per row (w ~ q * scale, scale = max|w| / 127):
/// the LM head at half the bytes of F16, which is what bounds decode speed on the big-vocabulary models.
/// Also keeps sum(q) per row, which the unsigned-by-signed int8 dot product needs.
/// </summary>
public sealed unsafe class Int8Matrix : IDisposable
{
    private const int RowsPerPiece = 512;

    private readonly WeightArena _memory;
    private sbyte* _q;
    private float* _scales;
    private int* _sums;

    // One fresh, zeroed, untouched block for q, scales and sums (every page is written once, by the quantizer),
    // or a read-only arena over a repack cache that holds them already.
    private Int8Matrix(int rows, int cols, WeightArena? memory = null)
    {
        Rows = rows;
        Cols = cols;
        _memory = memory ?? new WeightArena(ArenaBytes(rows, cols));
        _q = (sbyte*)_memory.Take((long)rows * cols);
        _scales = (float*)_memory.Take((long)rows * sizeof(float));
        _sums = (int*)_memory.Take((long)rows * sizeof(int));
    }

    /// <summary>Bytes of the one block that holds q, scales and sums.</summary>
    public static long ArenaBytes(int rows, int cols) =>
        WeightArena.SliceBytes((long)rows * cols) + 2 * WeightArena.SliceBytes((long)rows * sizeof(float));

    /// <summary>The block that holds q, scales and sums (what a repack cache stores).</summary>
    public WeightArena Memory => _memory;

    /// <summary>A matrix whose q, scales and sums <paramref name="cached"/> (an arena of <see cref="ArenaBytes"/>
    /// from a repack cache) holds already; disposing the matrix disposes it.</summary>
    public static Int8Matrix Over(int rows, int cols, WeightArena cached) => new(rows, cols, cached);

    public int Rows { get; }

    public int Cols { get; }

    public sbyte* Q => _q;

    public float* Scales => _scales;

    public int* Sums => _sums;

    /// <summary>
    /// Quantizes the first <paramref name="rows"/> rows of a dense F32/F16/BF16 matrix, in pieces of rows that
    /// the cores claim one at a time, calling <paramref name="consumed"/> (start, length in bytes of the source)
    /// after each piece so the caller can drop those source pages while the rest is still being read.
    /// </summary>
    public static Int8Matrix Quantize(DenseMatrix source, int rows, Action<nint, long>? consumed = null)
    {
        long rowBytes = (long)source.Cols * (source.Type == GgmlType.F32 ? 4 : 2);
        var m = new Int8Matrix(rows, source.Cols);
        int pieces = (rows + RowsPerPiece - 1) / RowsPerPiece;
        Parallel.For(0, pieces, () => (nint)NativeMemory.AlignedAlloc((nuint)source.Cols * sizeof(float), 64), (piece, _, row) =>
        {
            int start = piece * RowsPerPiece, end = Math.Min(rows, start + RowsPerPiece);
            for (int r = start; r < end; r++)
            {
                if (source.Type == GgmlType.F16 && Avx512F.IsSupported && source.Cols % 16 == 0)
                {
                    m.QuantizeHalfRow(r, (ushort*)source.Data + (long)r * source.Cols);
                }
                else
                {
                    source.ReadRow(r, new Span<float>((float*)row, source.Cols));
                    m.QuantizeRow(r, (float*)row);
                }
            }

            consumed?.Invoke((nint)(source.Data + start * rowBytes), (end - start) * rowBytes);
            return row;
        }, row => NativeMemory.AlignedFree((void*)row));
        return m;
    }

    /// <summary>
    /// <see cref="QuantizeRow"/> for an F16 row read straight from the source: the halves are converted twice
    /// (for max|w|, then for q) instead of through a float buffer. Both conversions are exact, so every q, scale
    /// and sum equals the buffered path's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per row at load, before tiering could help
    private void QuantizeHalfRow(int r, ushort* h)
    {
        int n = Cols;
        Vector512<float> max = default;
        for (int i = 0; i < n; i += 16)
        {
            max = Vector512.Max(max, Vector512.Abs(HalfBits.ToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i)))));
        }

        float amax = 0f;
        for (int k = 0; k < Vector512<float>.Count; k++)
        {
            amax = MathF.Max(amax, max.GetElement(k));
        }

        float inverse = amax > 0 ? 127f / amax : 0f;
        Vector512<float> inv = Vector512.Create(inverse);
        Vector512<int> sums = default;
        sbyte* q = _q + (long)r * n;
        for (int j = 0; j < n; j += 16)
        {
            Vector512<float> w = HalfBits.ToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + j)));
            Vector512<int> v = Avx512F.ConvertToVector512Int32(w * inv); // rounds to nearest even
            Avx512F.ConvertToVector128SByteWithSaturation(v).Store(q + j);
            sums += v;
        }

        _scales[r] = amax / 127f;
        _sums[r] = Vector512.Sum(sums);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void QuantizeRow(int r, float* row)
    {
        int n = Cols, i = 0;
        float amax = 0f;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> max = default;
            for (; i + 8 <= n; i += 8)
            {
                max = Vector256.Max(max, Vector256.Abs(Vector256.Load(row + i)));
            }

            for (int k = 0; k < Vector256<float>.Count; k++)
            {
                amax = MathF.Max(amax, max.GetElement(k));
            }
        }

        for (; i < n; i++)
        {
            amax = MathF.Max(amax, MathF.Abs(row[i]));
        }

        float scale = amax / 127f;
        float inverse = amax > 0 ? 127f / amax : 0f;
        sbyte* q = _q + (long)r * n;
        int sum = 0;
        int j = 0;
        if (Avx512F.IsSupported)
        {
            Vector512<int> sums = default;
            Vector512<float> inv = Vector512.Create(inverse);
            for (; j + 16 <= n; j += 16)
            {
                Vector512<int> v = Avx512F.ConvertToVector512Int32(Vector512.Load(row + j) * inv); // rounds to nearest even
                Avx512F.ConvertToVector128SByteWithSaturation(v).Store(q + j);
                sums += v;
            }

            sum = Vector512.Sum(sums);
        }

        for (; j < n; j++)
        {
            int v = (int)MathF.Round(row[j] * inverse);
            q[j] = (sbyte)v;
            sum += v;
        }

        _scales[r] = scale;
        _sums[r] = sum;
    }

    public void Dispose()
    {
        if (_q != null)
        {
            _memory.Dispose();
            _q = null;
            _scales = null;
            _sums = null;
        }
    }
}
