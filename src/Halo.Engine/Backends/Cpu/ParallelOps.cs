using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu;

/// <summary>Up to three ternary matmuls sharing one int8 input, split by row tiles across workers in one dispatch.</summary>
internal sealed unsafe class TernaryMatMulWork : IParallelWork
{
    private readonly TernaryMatrix?[] _w = new TernaryMatrix?[3];
    private readonly nint[] _y = new nint[3];
    private int _count;
    private QuantizedActivations? _x;

    public void Set(QuantizedActivations x, TernaryMatrix w0, float* y0, TernaryMatrix? w1 = null, float* y1 = null, TernaryMatrix? w2 = null, float* y2 = null)
    {
        _x = x;
        _w[0] = w0;
        _y[0] = (nint)y0;
        _w[1] = w1;
        _y[1] = (nint)y1;
        _w[2] = w2;
        _y[2] = (nint)y2;
        _count = w2 != null ? 3 : w1 != null ? 2 : 1;
    }

    public void Execute(int worker, int workers)
    {
        int total = 0;
        for (int i = 0; i < _count; i++)
        {
            total += _w[i]!.Tiles;
        }

        int start = (int)((long)total * worker / workers), end = (int)((long)total * (worker + 1) / workers);
        int offset = 0;
        for (int i = 0; i < _count && start < end; i++)
        {
            TernaryMatrix w = _w[i]!;
            int s = Math.Max(start, offset) - offset, e = Math.Min(end, offset + w.Tiles) - offset;
            if (s < e)
            {
                TernaryMatMul.Run(w, _x!, (float*)_y[i], w.Rows, s, e);
            }

            offset += w.Tiles;
        }
    }
}

/// <summary>Logits rows = LM head x for one hidden vector, split by vocabulary rows.</summary>
internal sealed unsafe class LmHeadWork : IParallelWork
{
    private DenseMatrix? _head;
    private float* _x;
    private float* _y;
    private int _rows;

    public void Set(DenseMatrix head, int rows, float* x, float* y)
    {
        _head = head;
        _rows = rows;
        _x = x;
        _y = y;
    }

    public void Execute(int worker, int workers)
    {
        int start = (int)((long)_rows * worker / workers), end = (int)((long)_rows * (worker + 1) / workers);
        DenseMatVec.Run(_head!, _x, _y, start, end);
    }
}

/// <summary>Logits rows = int8 LM head x for one hidden vector quantized per token, split by vocabulary rows.</summary>
internal sealed unsafe class Int8LmHeadWork : IParallelWork
{
    private Int8Matrix? _head;
    private byte* _u;
    private sbyte* _q;
    private float _d;
    private float* _y;

    public void Set(Int8Matrix head, byte* u, sbyte* q, float d, float* y)
    {
        _head = head;
        _u = u;
        _q = q;
        _d = d;
        _y = y;
    }

    public void Execute(int worker, int workers)
    {
        int rows = _head!.Rows;
        int start = (int)((long)rows * worker / workers), end = (int)((long)rows * (worker + 1) / workers);
        Int8MatVec.Run(_head, _u, _q, _d, _y, start, end);
    }
}
