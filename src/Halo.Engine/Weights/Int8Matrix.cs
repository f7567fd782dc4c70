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
    private sbyte* _q;
    private float* _scales;
    private int* _sums;

    private Int8Matrix(int rows, int cols)
    {
        Rows = rows;
        Cols = cols;
        _q = (sbyte*)NativeMemory.AlignedAlloc((nuint)rows * (nuint)cols, 64);
        _scales = (float*)NativeMemory.AlignedAlloc((nuint)rows * sizeof(float), 64);
        _sums = (int*)NativeMemory.AlignedAlloc((nuint)rows * sizeof(int), 64);
    }

    public int Rows { get; }

    public int Cols { get; }

    public sbyte* Q => _q;

    public float* Scales => _scales;

    public int* Sums => _sums;

    /// <summary>
    /// Quantizes the first <paramref name="rows"/> rows of a dense F32/F16/BF16 matrix, in parallel, calling
    /// <paramref name="consumed"/> (start, length in bytes of the source) after each stretch of rows so the
    /// caller can drop those source pages while the rest is still being read.
    /// </summary>
    public static Int8Matrix Quantize(DenseMatrix source, int rows, Action<nint, long>? consumed = null)
    {
        const int RowsPerRelease = 2048;
        long rowBytes = (long)source.Cols * (source.Type == GgmlType.F32 ? 4 : 2);
        var m = new Int8Matrix(rows, source.Cols);
        Parallel.For(0, Environment.ProcessorCount, part =>
        {
            float* row = (float*)NativeMemory.Alloc((nuint)source.Cols * sizeof(float));
            try
            {
                int start = (int)((long)rows * part / Environment.ProcessorCount), end = (int)((long)rows * (part + 1) / Environment.ProcessorCount);
                int released = start;
                for (int r = start; r < end; r++)
                {
                    if (source.Type == GgmlType.F16 && Avx512F.IsSupported && source.Cols % 16 == 0)
                    {
                        ushort* h = (ushort*)source.Data + (long)r * source.Cols;
                        for (int i = 0; i < source.Cols; i += 16)
                        {
                            HalfBits.ToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(h + i))).Store(row + i);
                        }
                    }
                    else
                    {
                        source.ReadRow(r, new Span<float>(row, source.Cols));
                    }

                    m.QuantizeRow(r, row);
                    if (consumed is not null && (r + 1 - released == RowsPerRelease || r + 1 == end))
                    {
                        consumed((nint)(source.Data + released * rowBytes), (r + 1 - released) * rowBytes);
                        released = r + 1;
                    }
                }
            }
            finally
            {
                NativeMemory.Free(row);
            }
        });
        return m;
    }

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
            NativeMemory.AlignedFree(_q);
            NativeMemory.AlignedFree(_scales);
            NativeMemory.AlignedFree(_sums);
            _q = null;
            _scales = null;
            _sums = null;
        }
    }
}
