using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using Halo.Engine.Backends;
using Halo.Engine.Backends.Cpu;
using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Weights;

namespace Halo.Benchmarks.Engine;

/// <summary>
/// The ternary matmul on the 2B shapes' largest projection (ffn_gate/up: 6912 x 2560), one thread, per SIMD
/// path, for one token (decode) and a batch of 64 (prefill), next to a plain read of the same bytes so each
/// run says which memory-bandwidth period it ran in. The row-scaled paths (one scale per row, per-token
/// activations: every BitNet checkpoint in Halo numerics) against the per-block paths (llama.cpp numerics).
/// </summary>
[MemoryDiagnoser]
public unsafe class TernaryMatMulBenchmarks
{
    private const int Rows = 6912, Cols = 2560;
    private TernaryMatrix _w = null!;
    private QuantizedActivations _x1 = null!;
    private QuantizedActivations _x64 = null!;
    private QuantizedActivations _t1 = null!;
    private QuantizedActivations _t64 = null!;
    private float* _y;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        var values = new sbyte[Rows * Cols];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (sbyte)(rng.Next(3) - 1);
        }

        var scales = new float[Rows * Cols / 256];
        Array.Fill(scales, 1f);
        _w = TernaryMatrix.FromValues("ffn_gate", values, scales, Rows, Cols, 1f);
        _x1 = Quantized(1, rng, ActivationScaling.PerBlock);
        _x64 = Quantized(64, rng, ActivationScaling.PerBlock);
        _t1 = Quantized(1, rng, ActivationScaling.PerToken);
        _t64 = Quantized(64, rng, ActivationScaling.PerToken);
        _y = (float*)NativeMemory.AlignedAlloc(64 * Rows * sizeof(float), 64);
    }

    private static QuantizedActivations Quantized(int tokens, Random rng, ActivationScaling scaling)
    {
        var x = new float[tokens * Cols];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(rng.NextDouble() * 2 - 1);
        }

        var q = new QuantizedActivations(tokens, Cols);
        fixed (float* p = x)
        {
            q.Quantize(p, tokens, Cols, scaling);
        }

        return q;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _w.Dispose();
        _x1.Dispose();
        _x64.Dispose();
        _t1.Dispose();
        _t64.Dispose();
        NativeMemory.AlignedFree(_y);
    }

    [Benchmark(Baseline = true, Description = "read the same bytes")]
    public int PlainRead()
    {
        Vector512<byte> acc = default;
        byte* p = _w.Codes;
        long n = (long)_w.Tiles * _w.Blocks * TernaryMatrix.TileRows * TernaryMatrix.BlockBytes;
        for (long i = 0; i < n; i += 64)
        {
            acc |= Vector512.Load(p + i);
        }

        return (int)acc.ToScalar();
    }

    [Benchmark(Description = "decode AVX-512BW")]
    public void DecodeAvx512() => TernaryMatMul.RunAvx512(_w, _x1, _y, Rows, 0, _w.Tiles);

    [Benchmark(Description = "decode AVX2")]
    public void DecodeAvx2() => TernaryMatMul.RunAvx2(_w, _x1, _y, Rows, 0, _w.Tiles);

    [Benchmark(Description = "prefill x64 AVX-512BW")]
    public void PrefillAvx512() => TernaryMatMul.RunAvx512(_w, _x64, _y, Rows, 0, _w.Tiles);

    [Benchmark(Description = "decode row-scaled AVX-512BW")]
    public void DecodeRowScaledAvx512() => TernaryMatMul.RunRowScaledAvx512(_w, _t1, _y, Rows, 0, _w.Tiles);

    [Benchmark(Description = "decode row-scaled AVX2")]
    public void DecodeRowScaledAvx2() => TernaryMatMul.RunRowScaledAvx2(_w, _t1, _y, Rows, 0, _w.Tiles);

    [Benchmark(Description = "prefill x64 row-scaled AVX-512BW (GEMM, VNNI micro-kernel where present)")]
    public void PrefillRowScaledAvx512() => TernaryMatMul.RunRowScaledAvx512(_w, _t64, _y, Rows, 0, _w.Tiles);

    [Benchmark(Description = "prefill x64 row-scaled AVX-512BW (GEMM, vpmaddubsw micro-kernel)")]
    public void PrefillRowScaledAvx512MultiplyAdd()
    {
        TernaryMatMul.UseVnni512 = false;
        try
        {
            TernaryMatMul.RunRowScaledAvx512(_w, _t64, _y, Rows, 0, _w.Tiles);
        }
        finally
        {
            TernaryMatMul.UseVnni512 = Vnni512Kernels.Usable;
        }
    }

    [Benchmark(Description = "prefill x64 row-scaled AVX2 (GEMM)")]
    public void PrefillRowScaledAvx2() => TernaryMatMul.RunRowScaledAvx2(_w, _t64, _y, Rows, 0, _w.Tiles);

    [Benchmark(Description = "prefill x64 portable Vector128")]
    public void PrefillPortable() => TernaryMatMul.RunPortable(_w, _t64, _y, Rows, 0, _w.Tiles);
}

/// <summary>
/// Decode attention on the 2B shapes (head_dim 128, 4 query heads per KV head) of one token against 512 and
/// 4096 cached positions, one thread, per vector width.
/// </summary>
public unsafe class AttentionBenchmarks
{
    private const int HeadDim = 128, Group = 4, Context = 4096;
    private KvCache _cache = null!;
    private float* _q;
    private float* _scores;
    private float* _output;

    [Params(64, 512, 4096)]
    public int Positions { get; set; }

    [Params(512, 256)]
    public int Width { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _cache = new KvCache(slots: 1, layers: 1, Context, kvHeads: 1, HeadDim);
        var rng = new Random(1);
        float* k = stackalloc float[HeadDim];
        float* v = stackalloc float[HeadDim];
        for (int p = 0; p < Context; p++)
        {
            for (int i = 0; i < HeadDim; i++)
            {
                k[i] = (float)rng.NextDouble() - 0.5f;
                v[i] = (float)rng.NextDouble() - 0.5f;
            }

            _cache.Store(0, 0, p, k, v, roundToHalf: false);
        }

        _q = (float*)NativeMemory.AlignedAlloc(Group * HeadDim * sizeof(float), 64);
        _output = (float*)NativeMemory.AlignedAlloc(Group * HeadDim * sizeof(float), 64);
        _scores = (float*)NativeMemory.AlignedAlloc((nuint)(Group * _cache.Capacity * sizeof(float)), 64);
        for (int i = 0; i < Group * HeadDim; i++)
        {
            _q[i] = (float)rng.NextDouble() - 0.5f;
        }

        Attention.UseVector512 = Width == 512 && Vector512.IsHardwareAccelerated;
        Attention.UseVector256 = Width == 256 || !Attention.UseVector512;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cache.Dispose();
        NativeMemory.AlignedFree(_q);
        NativeMemory.AlignedFree(_output);
        NativeMemory.AlignedFree(_scores);
    }

    [Benchmark(Description = "attention, one token, GQA group of 4")]
    public void Group4() => Attention.Group(_q, _cache.Keys(0, 0, 0), _cache.Values(0, 0, 0), _cache.Storage, Positions, Group, HeadDim, _scores, _cache.Capacity, _output, llamaCppNumerics: false);
}

/// <summary>
/// The LM head on the 2B shapes (128256 x 2560), one thread: F16, int8, and 6-bit and 4-bit (group 32) per SIMD
/// path, next to plain reads of the 6-bit and 4-bit heads' bytes so each run says which memory-bandwidth period it ran in.
/// </summary>
public unsafe class LmHeadBenchmarks
{
    private const int Rows = 128256, Cols = 2560;
    private ushort* _f16;
    private DenseMatrix _dense = null!;
    private Int8Matrix _int8 = null!;
    private Int4Matrix _int4 = null!;
    private Int6Matrix _int6 = null!;
    private short* _groupSums;
    private byte* _inputs6;       // (8, Int6MatVec.InputBytes) 6-bit head inputs; token 0 is the one-token input
    private sbyte* _batchQ;       // (8, Cols) int8-head inputs
    private float* _batchD;
    private float** _batchY;
    private byte* _batchU;        // (8, Cols) the int8 head's inputs plus 128
    private float* _x;
    private sbyte* _q;
    private byte* _u;
    private float* _y;

    [GlobalSetup]
    public void Setup()
    {
        _f16 = (ushort*)NativeMemory.AlignedAlloc((nuint)Rows * Cols * 2, 64);
        var rng = new Random(1);
        for (long i = 0; i < (long)Rows * Cols; i++)
        {
            _f16[i] = BitConverter.HalfToUInt16Bits((Half)(rng.NextDouble() * 0.2 - 0.1));
        }

        _dense = DenseMatrix.FromTensor("head", new Halo.Core.Formats.TensorView("output.weight", Halo.Core.Formats.GgmlType.F16, [Cols, Rows], (byte*)_f16, (long)Rows * Cols * 2), Cols);
        _int8 = Int8Matrix.Quantize(_dense, Rows);
        _int4 = Int4Matrix.Quantize(_dense, Rows, CpuBackend.Int4GroupSize);
        _int6 = Int6Matrix.Quantize(_dense, Rows, CpuBackend.Int6GroupSize);
        _groupSums = (short*)NativeMemory.AlignedAlloc((nuint)_int4.ScaleStride * sizeof(short), 64);
        _inputs6 = (byte*)NativeMemory.AlignedAlloc((nuint)(Int6MatVec.BatchTokens * Int6MatVec.InputBytes(_int6)), 64);
        _batchQ = (sbyte*)NativeMemory.AlignedAlloc((nuint)(Int6MatVec.BatchTokens * Cols), 64);
        _batchD = (float*)NativeMemory.AlignedAlloc(Int6MatVec.BatchTokens * sizeof(float), 64);
        _batchY = (float**)NativeMemory.AlignedAlloc((nuint)(Int6MatVec.BatchTokens * sizeof(float*)), 64);
        _batchU = (byte*)NativeMemory.AlignedAlloc((nuint)(Int8MatVec.BatchTokens * Cols), 64);
        _x = (float*)NativeMemory.AlignedAlloc(Cols * sizeof(float), 64);
        _q = (sbyte*)NativeMemory.AlignedAlloc(Cols, 64);
        _u = (byte*)NativeMemory.AlignedAlloc(Cols, 64);
        _y = (float*)NativeMemory.AlignedAlloc(Rows * sizeof(float), 64);
        for (int i = 0; i < Cols; i++)
        {
            _x[i] = (float)rng.NextDouble();
            _q[i] = (sbyte)rng.Next(-127, 128);
            _u[i] = (byte)(_q[i] + 128);
        }

        Int4MatVec.GroupSums(_int4, _q, _groupSums);
        for (int k = 0; k < Int6MatVec.BatchTokens; k++)
        {
            Int6MatVec.QuantizeInput(_int6, _x, Cols, _inputs6 + k * Int6MatVec.InputBytes(_int6));
            Buffer.MemoryCopy(_q, _batchQ + k * Cols, Cols, Cols);
            _batchD[k] = 0.01f;
            _batchY[k] = _y;   // the benchmark keeps no logits: all tokens write one buffer
            Buffer.MemoryCopy(_u, _batchU + k * Cols, Cols, Cols);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _int8.Dispose();
        _int4.Dispose();
        _int6.Dispose();
        NativeMemory.AlignedFree(_groupSums);
        NativeMemory.AlignedFree(_inputs6);
        NativeMemory.AlignedFree(_batchQ);
        NativeMemory.AlignedFree(_batchD);
        NativeMemory.AlignedFree(_batchY);
        NativeMemory.AlignedFree(_batchU);
        NativeMemory.AlignedFree(_f16);
        NativeMemory.AlignedFree(_x);
        NativeMemory.AlignedFree(_q);
        NativeMemory.AlignedFree(_u);
        NativeMemory.AlignedFree(_y);
    }

    [Benchmark(Baseline = true, Description = "F16 head")]
    public void F16() => DenseMatVec.Run(_dense, _x, _y, 0, Rows);

    [Benchmark(Description = "int8 head (AVX-VNNI)")]
    public void Int8() => Int8MatVec.Run(_int8, _u, _q, 0.01f, _y, 0, Rows);

    [Benchmark(Description = "int8 head, 8 tokens in one pass (AVX-512 VNNI where present)")]
    public void Int8Batch() => Int8MatVec.RunBatch(_int8, _batchU, _batchQ, _batchD, _batchY, Int8MatVec.BatchTokens, 0, Rows);

    [Benchmark(Description = "int8 head, 8 tokens in one pass (AVX-VNNI)")]
    public void Int8BatchAvxVnni()
    {
        Int8MatVec.UseVnni512 = false;
        try
        {
            Int8MatVec.RunBatch(_int8, _batchU, _batchQ, _batchD, _batchY, Int8MatVec.BatchTokens, 0, Rows);
        }
        finally
        {
            Int8MatVec.UseVnni512 = Vnni512Kernels.Usable;
        }
    }

    [Benchmark(Description = "int4 head (AVX-512BW)")]
    public void Int4Avx512() => Int4MatVec.RunAvx512(_int4, _q, _groupSums, 0.01f, _y, 0, _int4.Tiles);

    [Benchmark(Description = "int4 head (AVX2)")]
    public void Int4Avx2() => Int4MatVec.RunAvx2(_int4, _q, _groupSums, 0.01f, _y, 0, _int4.Tiles);

    [Benchmark(Description = "int6 head (AVX-512BW)")]
    public void Int6Avx512() => Int6MatVec.RunAvx512(_int6, _inputs6, _y, 0, _int6.Tiles);

    [Benchmark(Description = "int6 head (AVX2)")]
    public void Int6Avx2() => Int6MatVec.RunAvx2(_int6, _inputs6, _y, 0, _int6.Tiles);

    [Benchmark(Description = "int6 head, 8 tokens in one pass (AVX-512 VNNI where present)")]
    public void Int6Batch() => Int6MatVec.RunBatchAvx512(_int6, _inputs6, _batchY, 0, _int6.Tiles);

    [Benchmark(Description = "int6 head, 8 tokens in one pass (AVX-512BW)")]
    public void Int6BatchAvx512()
    {
        Int6MatVec.UseVnni512 = false;
        try
        {
            Int6MatVec.RunBatchAvx512(_int6, _inputs6, _batchY, 0, _int6.Tiles);
        }
        finally
        {
            Int6MatVec.UseVnni512 = Vnni512Kernels.Usable;
        }
    }

    [Benchmark(Description = "quantize F16 to int6 (load, all cores)")]
    public void QuantizeInt6()
    {
        using Int6Matrix m = Int6Matrix.Quantize(_dense, Rows, CpuBackend.Int6GroupSize);
    }

    [Benchmark(Description = "read of the int6 head's bytes")]
    public Vector512<byte> ReadInt6Bytes() => Read(_int6.Data, _int6.SizeInBytes);

    [Benchmark(Description = "quantize F16 to int8 (load, all cores)")]
    public void QuantizeInt8()
    {
        using Int8Matrix m = Int8Matrix.Quantize(_dense, Rows);
    }

    [Benchmark(Description = "quantize F16 to int4 (load, all cores)")]
    public void QuantizeInt4()
    {
        using Int4Matrix m = Int4Matrix.Quantize(_dense, Rows, CpuBackend.Int4GroupSize);
    }

    [Benchmark(Description = "read of the int4 head's bytes")]
    public Vector512<byte> ReadInt4Bytes() => Read(_int4.Data, _int4.SizeInBytes);

    private static Vector512<byte> Read(byte* p, long bytes)
    {
        Vector512<byte> acc = default;
        for (long i = 0; i + 256 <= bytes; i += 256)
        {
            acc |= Vector512.Load(p + i) | Vector512.Load(p + i + 64) | Vector512.Load(p + i + 128) | Vector512.Load(p + i + 192);
        }

        return acc;
    }
}

/// <summary>Cost of one dispatch to the persistent worker pool (2 workers, two empty items).</summary>
public class WorkerPoolBenchmarks
{
    private readonly WorkerPool _pool = new(2);
    private readonly Nothing _work = new();

    [Benchmark(Description = "dispatch, 2 workers")]
    public void Dispatch() => _pool.Run(_work);

    [GlobalCleanup]
    public void Cleanup() => _pool.Dispose();

    private sealed class Nothing : ParallelWork
    {
        protected override int ItemCount => 2;

        protected override void Execute(int item, int worker)
        {
        }
    }
}
