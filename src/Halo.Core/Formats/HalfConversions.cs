using System.Runtime.CompilerServices;

namespace Halo.Core.Formats;

/// <summary>IEEE binary16 (ggml_half) conversions; round-to-nearest-even like ggml's F16C path.</summary>
public static class Fp16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>The value after a round trip through F16 (what a model stores for <paramref name="value"/>).</summary>
    public static float Round(float value) => (float)(Half)value;

    public static void ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length)
        {
            throw new ArgumentException("destination too short", nameof(dst));
        }

        for (int i = 0; i < src.Length; i++)
        {
            dst[i] = ToFloat(src[i]);
        }
    }

    public static void FromFloat(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length)
        {
            throw new ArgumentException("destination too short", nameof(dst));
        }

        for (int i = 0; i < src.Length; i++)
        {
            dst[i] = FromFloat(src[i]);
        }
    }
}

/// <summary>bfloat16 conversions exactly as ggml does them (round-to-nearest-even, NaN kept quiet).</summary>
public static class Bf16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7fffffff) > 0x7f800000)
        {
            // NaN: keep the sign and top mantissa bits, force the quiet bit.
            return (ushort)((u >> 16) | 64);
        }

        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    public static void ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length)
        {
            throw new ArgumentException("destination too short", nameof(dst));
        }

        for (int i = 0; i < src.Length; i++)
        {
            dst[i] = ToFloat(src[i]);
        }
    }

    public static void FromFloat(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length)
        {
            throw new ArgumentException("destination too short", nameof(dst));
        }

        for (int i = 0; i < src.Length; i++)
        {
            dst[i] = FromFloat(src[i]);
        }
    }
}
