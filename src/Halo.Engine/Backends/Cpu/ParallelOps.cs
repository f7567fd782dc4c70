using Halo.Engine.Backends.Cpu.Kernels;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu;

/// <summary>Up to three ternary matmuls sharing one int8 input, in items of whole row tiles (<see cref="TilesPerItem"/>), one dispatch.</summary>
internal sealed unsafe class TernaryMatMulWork(int threads) : ParallelWork
{
    // Decode: 16 tiles (64 rows) per item. At 8 an item's setup (two token groups' scaling, the micro-kernel calls) was
    // a tenth of a batched step's gate/up matmul (14.9 -> 13.1-14.2 ms per step at 16, 2 threads); 32 measured no
    // better, and 64 took an 8-stream step ~0.8 ms longer in the tail of each matmul's last items.
    private const int DecodeTiles = 16;

    // Prefill (more than one 8-token group): up to 64 tiles, so that each item's weights serve every token group from
    // L2 four times as long, while every thread still gets 4 items of each matrix. A 256-token chunk of the 2B model,
    // 2 threads, 3 interleaved pairs of 3 runs: gate/up 294-305 -> 279-288 ms, 361-373 -> 378-388 tok/s.
    private const int PrefillTiles = 64;

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

    // Items never straddle two matrices: each matrix gets ceil(tiles / TilesPerItem) of them.
    protected override int ItemCount
    {
        get
        {
            int items = 0;
            for (int i = 0; i < _count; i++)
            {
                items += Items(_w[i]!);
            }

            return items;
        }
    }

    private int TilesPerItem(TernaryMatrix w) =>
        _x!.Tokens > 2 * TernaryMatMul.TokenGroup ? Math.Clamp(w.Tiles / (4 * threads), DecodeTiles, PrefillTiles) : DecodeTiles;

    private int Items(TernaryMatrix w)
    {
        int tiles = TilesPerItem(w);
        return (w.Tiles + tiles - 1) / tiles;
    }

    protected override void Execute(int item, int worker)
    {
        for (int i = 0; i < _count; i++)
        {
            TernaryMatrix w = _w[i]!;
            int items = Items(w);
            if (item < items)
            {
                int tiles = TilesPerItem(w), start = item * tiles;
                TernaryMatMul.Run(w, _x!, (float*)_y[i], w.Rows, start, Math.Min(w.Tiles, start + tiles));
                return;
            }

            item -= items;
        }
    }
}

/// <summary>Logits rows = LM head x for one hidden vector, split by vocabulary rows.</summary>
internal sealed unsafe class LmHeadWork : ParallelWork
{
    private const int RowsPerItem = 512;

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

    protected override int ItemCount => (_rows + RowsPerItem - 1) / RowsPerItem;

    protected override void Execute(int item, int worker) =>
        DenseMatVec.Run(_head!, _x, _y, item * RowsPerItem, Math.Min(_rows, (item + 1) * RowsPerItem));
}

/// <summary>Logits rows = 4-bit LM head x for one hidden vector quantized per token, split by row tiles.</summary>
internal sealed unsafe class Int4LmHeadWork : ParallelWork
{
    private const int TilesPerItem = 256;

    private Int4Matrix? _head;
    private sbyte* _q;
    private short* _groupSums;
    private float _d;
    private float* _y;

    public void Set(Int4Matrix head, sbyte* q, short* groupSums, float d, float* y)
    {
        _head = head;
        _q = q;
        _groupSums = groupSums;
        _d = d;
        _y = y;
    }

    protected override int ItemCount => (_head!.Tiles + TilesPerItem - 1) / TilesPerItem;

    protected override void Execute(int item, int worker) =>
        Int4MatVec.Run(_head!, _q, _groupSums, _d, _y, item * TilesPerItem, Math.Min(_head!.Tiles, (item + 1) * TilesPerItem));
}

/// <summary>Logits of one or several tokens (one pass over the 6-bit LM head), split by row tiles.</summary>
internal sealed unsafe class Int6LmHeadWork : ParallelWork
{
    private const int TilesPerItem = 256;

    private Int6Matrix? _head;
    private byte* _inputs;
    private float** _logits;
    private int _tokens;

    /// <summary>Token k: its input (<see cref="Int6MatVec.QuantizeInput"/>) at inputs + k * InputBytes, logits into logits[k].</summary>
    public void Set(Int6Matrix head, byte* inputs, float** logits, int tokens)
    {
        _head = head;
        _inputs = inputs;
        _logits = logits;
        _tokens = tokens;
    }

    protected override int ItemCount => (_head!.Tiles + TilesPerItem - 1) / TilesPerItem;

    protected override void Execute(int item, int worker)
    {
        int start = item * TilesPerItem, end = Math.Min(_head!.Tiles, (item + 1) * TilesPerItem);
        if (_tokens == 1)
        {
            Int6MatVec.Run(_head, _inputs, _logits[0], start, end);
        }
        else
        {
            Int6MatVec.RunBatch(_head, _inputs, _logits, _tokens, start, end);
        }
    }
}

/// <summary>Logits of one or several tokens (one pass over the int8 LM head), split by vocabulary rows.</summary>
internal sealed unsafe class Int8LmHeadWork : ParallelWork
{
    private const int RowsPerItem = 1024;

    private Int8Matrix? _head;
    private byte* _u;
    private sbyte* _q;
    private float* _d;
    private float** _logits;
    private int _tokens;

    /// <summary>Token k: inputs at u/q + k * cols, scale d[k], logits into logits[k].</summary>
    public void Set(Int8Matrix head, byte* u, sbyte* q, float* d, float** logits, int tokens)
    {
        _head = head;
        _u = u;
        _q = q;
        _d = d;
        _logits = logits;
        _tokens = tokens;
    }

    protected override int ItemCount => (_head!.Rows + RowsPerItem - 1) / RowsPerItem;

    protected override void Execute(int item, int worker) =>
        Int8MatVec.RunBatch(_head!, _u, _q, _d, _logits, _tokens, item * RowsPerItem, Math.Min(_head!.Rows, (item + 1) * RowsPerItem));
}
