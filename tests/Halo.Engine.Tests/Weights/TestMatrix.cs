using System.Runtime.InteropServices;
using Halo.Core.Formats;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Weights;

/// <summary>A dense [rows, cols] matrix in native memory (F16 by default) with Gaussian values of scale 0.02 and rare 6x outliers, as embeddings have.</summary>
internal sealed unsafe class TestMatrix : IDisposable
{
    private readonly byte* _data;

    public TestMatrix(int rows, int cols, int seed, GgmlType type = GgmlType.F16, Func<int, int, float>? value = null)
    {
        int size = type == GgmlType.F32 ? 4 : 2;
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)((long)rows * cols * size), 64);
        var rng = new Random(seed);
        Values = new float[(long)rows * cols];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                long i = (long)r * cols + c;
                float v = value?.Invoke(r, c) ?? Gaussian(rng) * 0.02f * (rng.Next(1000) == 0 ? 6f : 1f);
                switch (type)
                {
                    case GgmlType.F32:
                        ((float*)_data)[i] = v;
                        break;
                    case GgmlType.BF16:
                        ((ushort*)_data)[i] = (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16);
                        v = BitConverter.UInt32BitsToSingle((uint)((ushort*)_data)[i] << 16);
                        break;
                    default:
                        ((Half*)_data)[i] = (Half)v;
                        v = (float)((Half*)_data)[i];
                        break;
                }

                Values[i] = v;
            }
        }

        Dense = DenseMatrix.FromTensor("test", new TensorView("w", type, [cols, rows], _data, (long)rows * cols * size), cols);
    }

    public DenseMatrix Dense { get; }

    /// <summary>The stored values as floats [rows * cols].</summary>
    public float[] Values { get; }

    public byte* Data => _data;

    public static float Gaussian(Random rng) =>
        (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

    public void Dispose() => NativeMemory.AlignedFree(_data);
}
