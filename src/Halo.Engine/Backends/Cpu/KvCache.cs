using System.Runtime.InteropServices;

namespace Halo.Engine.Backends.Cpu;

/// <summary>
/// Keys and values of every layer for <see cref="Slots"/> sequences: K and V each [slots, layers, context,
/// kv_heads * head_dim] floats. The memory is reserved, not touched, up front, so resident memory grows with
/// the positions actually used. In llama.cpp numerics values are rounded to F16 on store, as its F16 cache keeps them.
/// </summary>
public sealed unsafe class KvCache : IDisposable
{
    private float* _keys;
    private float* _values;

    public KvCache(int slots, int layers, int context, int kvDim)
    {
        Slots = slots;
        Layers = layers;
        Context = context;
        KvDim = kvDim;
        nuint bytes = (nuint)slots * (nuint)layers * (nuint)context * (nuint)kvDim * sizeof(float);
        _keys = (float*)NativeMemory.Alloc(bytes);
        _values = (float*)NativeMemory.Alloc(bytes);
    }

    public int Slots { get; }

    public int Layers { get; }

    public int Context { get; }

    public int KvDim { get; }

    /// <summary>The keys of (slot, layer) [context, kvDim].</summary>
    public float* Keys(int slot, int layer) => _keys + ((long)slot * Layers + layer) * Context * KvDim;

    /// <summary>The values of (slot, layer) [context, kvDim].</summary>
    public float* Values(int slot, int layer) => _values + ((long)slot * Layers + layer) * Context * KvDim;

    public void Dispose()
    {
        if (_keys != null)
        {
            NativeMemory.Free(_keys);
            NativeMemory.Free(_values);
            _keys = null;
            _values = null;
        }
    }
}
