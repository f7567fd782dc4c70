using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Halo.Engine.Weights;

/// <summary>
/// IEEE half and bfloat16 conversions done with integer and float arithmetic, because .NET exposes no vector
/// F16 to F32 conversion (no vcvtph2ps intrinsic). The magic-multiply form handles zeros and subnormals exactly;
/// infinities and NaNs do not occur in model weights.
/// </summary>
internal static class HalfBits
{
    // A half's exponent+mantissa shifted into float position is the value times 2^-112; multiplying by 2^112 fixes
    // the exponent bias and renormalises subnormals in one exact float multiply.
    private const float ExponentFix = 5.192296858534828e33f; // 2^112

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort h)
    {
        uint sign = (uint)(h & 0x8000) << 16;
        float magnitude = BitConverter.UInt32BitsToSingle((uint)(h & 0x7FFF) << 13) * ExponentFix;
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(magnitude) | sign);
    }

    /// <summary>16 halves (as uint32 lanes, high bits zero) to 16 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToSingle(Vector512<uint> h)
    {
        Vector512<uint> sign = (h & Vector512.Create(0x8000u)) << 16;
        Vector512<float> magnitude = ((h & Vector512.Create(0x7FFFu)) << 13).AsSingle() * Vector512.Create(ExponentFix);
        return (magnitude.AsUInt32() | sign).AsSingle();
    }

    /// <summary>8 halves (as uint32 lanes) to 8 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<uint> h)
    {
        Vector256<uint> sign = (h & Vector256.Create(0x8000u)) << 16;
        Vector256<float> magnitude = ((h & Vector256.Create(0x7FFFu)) << 13).AsSingle() * Vector256.Create(ExponentFix);
        return (magnitude.AsUInt32() | sign).AsSingle();
    }

    /// <summary>Rounds a float to the nearest half (ties to even) and back: what storing it as F16 keeps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundToHalf(float x) => (float)(Half)x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16ToSingle(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    /// <summary>The nearest bfloat16 (ties to even) of a finite float: its top 16 bits after rounding the low 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort SingleToBFloat16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>
    /// destination[i] = <see cref="SingleToBFloat16(float)"/>(source[i]) for i in [0, n), 32 at a time where
    /// Vector512 is accelerated (the same bits).
    /// </summary>
    public static unsafe void SingleToBFloat16(float* source, ushort* destination, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= n; i += 32)
            {
                Vector512.Narrow(RoundedHigh(Vector512.Load((uint*)source + i)), RoundedHigh(Vector512.Load((uint*)source + i + 16)))
                    .Store(destination + i);
            }
        }

        for (; i < n; i++)
        {
            destination[i] = SingleToBFloat16(source[i]);
        }
    }

    private static Vector512<uint> RoundedHigh(Vector512<uint> bits) =>
        (bits + Vector512.Create(0x7FFFu) + ((bits >> 16) & Vector512<uint>.One)) >> 16;
}
