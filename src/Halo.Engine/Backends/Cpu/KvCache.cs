using System.Runtime.InteropServices;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu;

/// <summary>How a <see cref="KvCache"/> stores keys and values.</summary>
public enum KvStorage
{
    /// <summary>Four bytes per element; llama.cpp numerics round them to F16 on store, as its F16 cache keeps them.</summary>
    F32,

    /// <summary>
    /// BF16, two bytes per element (round to nearest even). Decoding reads every cached key and value of the
    /// sequence once per token, so this halves attention's memory traffic; BF16 is the precision BitNet
    /// checkpoints compute K and V in.
    /// </summary>
    Bf16,
}

/// <summary>
/// Keys and values of every layer for <see cref="Slots"/> sequences, one contiguous run per (slot, layer, kv head):
/// keys [capacity / 16, head_dim, 16]: positions in blocks of <see cref="KeyBlock"/>, transposed within a block,
/// so attention scores 16 positions with one vector multiply-add per dimension and no horizontal sums;
/// values [capacity, head_dim]. Capacity is the context rounded up to a whole key block. The memory is reserved,
/// not touched, up front, so resident memory grows with the positions actually used.
/// </summary>
public sealed unsafe class KvCache : IDisposable
{
    public const int KeyBlock = 16;

    private byte* _keys;
    private byte* _values;

    public KvCache(int slots, int layers, int context, int kvHeads, int headDim, KvStorage storage = KvStorage.F32)
    {
        Slots = slots;
        Layers = layers;
        Context = context;
        Capacity = (context + KeyBlock - 1) / KeyBlock * KeyBlock;
        KvHeads = kvHeads;
        HeadDim = headDim;
        Storage = storage;
        ElementSize = storage == KvStorage.Bf16 ? sizeof(ushort) : sizeof(float);
        nuint bytes = (nuint)slots * (nuint)layers * (nuint)kvHeads * (nuint)Capacity * (nuint)headDim * (nuint)ElementSize;
        _keys = (byte*)NativeMemory.AlignedAlloc(bytes, 64);
        _values = (byte*)NativeMemory.AlignedAlloc(bytes, 64);
    }

    public int Slots { get; }

    public int Layers { get; }

    public int Context { get; }

    /// <summary>Positions stored per (slot, layer, head): the context rounded up to a whole key block.</summary>
    public int Capacity { get; }

    public int KvHeads { get; }

    public int HeadDim { get; }

    public KvStorage Storage { get; }

    /// <summary>Bytes per stored key or value element.</summary>
    public int ElementSize { get; }

    /// <summary>The keys of (slot, layer, kv head) [capacity / 16, head_dim, 16].</summary>
    public byte* Keys(int slot, int layer, int kvHead) => _keys + Run(slot, layer, kvHead) * ElementSize;

    /// <summary>The values of (slot, layer, kv head) [capacity, head_dim].</summary>
    public byte* Values(int slot, int layer, int kvHead) => _values + Run(slot, layer, kvHead) * ElementSize;

    /// <summary>
    /// Stores k and v [kv_heads * head_dim] of one token at <paramref name="position"/>; with F32 storage,
    /// <paramref name="roundToHalf"/> keeps only what F16 would.
    /// </summary>
    public void Store(int slot, int layer, int position, float* k, float* v, bool roundToHalf)
    {
        int block = position / KeyBlock, lane = position % KeyBlock;
        ushort* rounded = stackalloc ushort[HeadDim]; // a key head in BF16, before it is spread over its block's rows
        for (int h = 0; h < KvHeads; h++)
        {
            long key = (long)block * HeadDim * KeyBlock + lane, value = (long)position * HeadDim;
            float* kh = k + h * HeadDim, vh = v + h * HeadDim;
            if (Storage == KvStorage.Bf16)
            {
                ushort* keys = (ushort*)Keys(slot, layer, h) + key;
                HalfBits.SingleToBFloat16(vh, (ushort*)Values(slot, layer, h) + value, HeadDim);
                HalfBits.SingleToBFloat16(kh, rounded, HeadDim);
                for (int i = 0; i < HeadDim; i++)
                {
                    keys[i * KeyBlock] = rounded[i];
                }
            }
            else
            {
                float* keys = (float*)Keys(slot, layer, h) + key, values = (float*)Values(slot, layer, h) + value;
                for (int i = 0; i < HeadDim; i++)
                {
                    keys[i * KeyBlock] = roundToHalf ? HalfBits.RoundToHalf(kh[i]) : kh[i];
                    values[i] = roundToHalf ? HalfBits.RoundToHalf(vh[i]) : vh[i];
                }
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
