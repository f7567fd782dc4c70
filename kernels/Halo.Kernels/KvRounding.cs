namespace Halo.Kernels;

/// <summary>What the KV cache keeps of each stored key and value.</summary>
public enum KvRounding
{
    None,
    Half,
    BFloat16,
}
