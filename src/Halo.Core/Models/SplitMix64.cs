namespace Halo.Core.Models;

/// <summary>
/// SplitMix64: a tiny, fast generator whose sequence is fixed by its definition (not by a .NET version), so a
/// synthetic model made from a seed is the same file everywhere.
/// </summary>
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 24 bits, exactly representable as a float.</summary>
    public float NextFloat() => (Next() >> 40) * (1.0f / (1 << 24));

    /// <summary>Uniform in [-a, a).</summary>
    public float NextSymmetric(float a) => ((NextFloat() * 2) - 1) * a;

    /// <summary>A seed for a named stream derived from a parent seed (FNV-1a of the name, mixed).</summary>
    public static ulong Derive(ulong seed, string name, long index = 0)
    {
        ulong h = 0xcbf29ce484222325UL;
        foreach (char c in name)
        {
            h = (h ^ c) * 0x100000001b3UL;
        }

        var mix = new SplitMix64(seed ^ h ^ ((ulong)index * 0xD1B54A32D192ED03UL));
        return mix.Next();
    }
}
