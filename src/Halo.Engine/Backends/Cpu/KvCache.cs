using System.Runtime.InteropServices;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu;

/// <summary>
/// Keys and values of every layer for <see cref="Slots"/> sequences, one contiguous run per (slot, layer, kv head):
/// keys [capacity / 16, head_dim, 16]: positions in blocks of <see cref="KeyBlock"/>, transposed within a block,
/// so attention scores 16 positions with one vector multiply-add per dimension and no horizontal sums;
/// values [capacity, head_dim]. Capacity is the context rounded up to a whole key block. The memory is reserved,
/// not touched, up front, so resident memory grows with the positions actually used. In llama.cpp numerics
/// keys and values are rounded to F16 on store, as its F16 cache keeps them.
/// </summary>
public sealed unsafe class KvCache : IDisposable
{
    public const int KeyBlock = 16;

    private float* _keys;
    private float* _values;

    public KvCache(int slots, int layers, int context, int kvHeads, int headDim)
    {
        Slots = slots;
        Layers = layers;
        Context = context;
        Capacity = (context + KeyBlock - 1) / KeyBlock * KeyBlock;
        KvHeads = kvHeads;
        HeadDim = headDim;
        nuint bytes = (nuint)slots * (nuint)layers * (nuint)kvHeads * (nuint)Capacity * (nuint)headDim * sizeof(float);
        _keys = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        _values = (float*)NativeMemory.AlignedAlloc(bytes, 64);
    }

    public int Slots { get; }

    public int Layers { get; }

    public int Context { get; }

    /// <summary>Positions stored per (slot, layer, head): the context rounded up to a whole key block.</summary>
    public int Capacity { get; }

    public int KvHeads { get; }

    public int HeadDim { get; }

    /// <summary>The keys of (slot, layer, kv head) [capacity / 16, head_dim, 16].</summary>
    public float* Keys(int slot, int layer, int kvHead) => _keys + Run(slot, layer, kvHead);

    /// <summary>The values of (slot, layer, kv head) [capacity, head_dim].</summary>
    public float* Values(int slot, int layer, int kvHead) => _values + Run(slot, layer, kvHead);

    /// <summary>Stores k and v [kv_heads * head_dim] of one token at <paramref name="position"/>.</summary>
    public void Store(int slot, int layer, int position, float* k, float* v, bool roundToHalf)
    {
        int block = position / KeyBlock, lane = position % KeyBlock;
        for (int h = 0; h < KvHeads; h++)
        {
            float* keys = Keys(slot, layer, h) + (long)block * HeadDim * KeyBlock + lane;
            float* values = Values(slot, layer, h) + (long)position * HeadDim;
            float* kh = k + h * HeadDim, vh = v + h * HeadDim;
            for (int i = 0; i < HeadDim; i++)
            {
                keys[i * KeyBlock] = roundToHalf ? HalfBits.RoundToHalf(kh[i]) : kh[i];
                values[i] = roundToHalf ? HalfBits.RoundToHalf(vh[i]) : vh[i];
            }
        }
    }

    private long Run(int slot, int layer, int kvHead) => (((long)slot * Layers + layer) * KvHeads + kvHead) * Capacity * HeadDim;

    public void Dispose()
    {
        if (_keys != null)
        {
            NativeMemory.AlignedFree(_keys);
            NativeMemory.AlignedFree(_values);
            _keys = null;
            _values = null;
        }
    }
}
