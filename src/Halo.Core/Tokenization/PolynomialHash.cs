using System.Runtime.CompilerServices;

namespace Halo.Core.Tokenization;

/// <summary>
/// Polynomial string hash modulo the Mersenne prime 2^61 - 1 with a base drawn per process:
/// H(s) = sum of s[i] * B^(n-1-i). It composes, H(a + b) = H(a) * B^|b| + H(b), which lets the tokenizer
/// hash the merge string "a b" of two tokens from their precomputed hashes without building the string.
/// The prime modulus and the random base keep crafted collisions (e.g. Thue-Morse strings, which break
/// hashing modulo 2^64) improbable, so a hostile vocabulary cannot turn loading quadratic.
/// </summary>
internal static class PolynomialHash
{
    private const ulong Prime = (1UL << 61) - 1;

    public static readonly ulong Base = (ulong)Random.Shared.NextInt64(1L << 32, (long)Prime - 1);

    // The hashes are compiled optimized on first call, with Multiply and Add inlined: ReadyToRun drops its precompiled
    // code for Math.BigMul's callers on a CPU with BMI2, so a published daemon hashed the vocabulary at its start
    // with the unoptimized first-tier Multiply, called twice per character of 128k tokens.

    /// <summary>H(<paramref name="text"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ulong Of(ReadOnlySpan<char> text)
    {
        ulong hash = 0;
        foreach (var c in text)
        {
            hash = Add(Multiply(hash, Base), c);
        }

        return hash;
    }

    /// <summary>H(<paramref name="text"/>) and B^|text|, the factor that shifts a hash past the text.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ulong Of(ReadOnlySpan<char> text, out ulong shift)
    {
        ulong hash = 0;
        shift = 1;
        foreach (var c in text)
        {
            hash = Add(Multiply(hash, Base), c);
            shift = Multiply(shift, Base);
        }

        return hash;
    }

    /// <summary>H(a + " " + b) from H(a), H(b) and B^|b|.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ulong OfPair(ulong left, ulong right, ulong rightShift) =>
        Add(Multiply(Add(Multiply(left, Base), ' '), rightShift), right);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Add(ulong a, ulong b)
    {
        var sum = a + b;
        return sum >= Prime ? sum - Prime : sum;
    }

    // a, b < 2^61: the 122-bit product folds as 2^61 = 1 (mod 2^61 - 1).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Multiply(ulong a, ulong b)
    {
        var high = Math.BigMul(a, b, out var low);
        var folded = (low & Prime) + (low >> 61) + (high << 3);
        folded = (folded & Prime) + (folded >> 61);
        return folded >= Prime ? folded - Prime : folded;
    }
}
