using ILGPU;
using ILGPU.Algorithms;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Device-side arithmetic shared by the kernels: candidate ordering, F16 conversions and the ternary dot
/// product, written with integer operations so the same code compiles for CUDA, OpenCL and the CPU
/// accelerator without relying on a backend's half support. Callable from host code (tests) too.
/// </summary>
internal static class DeviceMath
{
    /// <summary>Ordering of candidates: larger value first, then lower index; index -1 marks "no candidate".</summary>
    public static bool IsBetter(float value, int index, float than, int thanIndex)
    {
        if (index < 0)
        {
            return false;
        }

        if (thanIndex < 0)
        {
            return true;
        }

        return value > than || (value == than && index < thanIndex);
    }

    /// <summary>IEEE binary16 bits to float (exact: every half is a float).</summary>
    public static float HalfToFloat(uint bits)
    {
        uint sign = (bits & 0x8000u) << 16;
        uint exponent = (bits >> 10) & 0x1Fu;
        uint mantissa = bits & 0x3FFu;
        if (exponent == 0)
        {
            // zero or subnormal: mantissa * 2^-24, exact in float
            float magnitude = mantissa * 5.9604644775390625e-8f;
            return sign != 0 ? -magnitude : magnitude;
        }

        if (exponent == 31)
        {
            return Interop.IntAsFloat(sign | 0x7F800000u | (mantissa << 13));
        }

        return Interop.IntAsFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    }

    /// <summary>Rounds a finite float to the nearest bfloat16 value (ties to even), returned as float.</summary>
    public static float RoundToBFloat16(float value)
    {
        uint bits = Interop.FloatAsInt(value);
        return Interop.IntAsFloat((bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u);
    }

    /// <summary>
    /// Rounds a float to the nearest binary16 value (ties to even), returned as float. Written with integer
    /// operations because ILGPU's software float-to-half conversion (used on the CPU accelerator) truncates.
    /// </summary>
    public static float RoundToHalf(float value)
    {
        uint bits = Interop.FloatAsInt(value);
        uint sign = bits & 0x80000000u;
        uint magnitude = bits & 0x7FFFFFFFu;
        if (magnitude >= 0x7F800000u)
        {
            return value; // infinity or NaN
        }

        if (magnitude < 0x38800000u)
        {
            // below 2^-14 halves are subnormal, spaced 2^-24: adding 0.5 (whose ulp is 2^-24) rounds to that
            // grid with the FPU's ties-to-even, and subtracting it again is exact.
            float rounded = (Interop.IntAsFloat(magnitude) + 0.5f) - 0.5f;
            return Interop.IntAsFloat(sign | Interop.FloatAsInt(rounded));
        }

        // keep 10 of the 23 mantissa bits, ties to even; a carry into the exponent is the correct result
        magnitude += 0xFFFu + ((magnitude >> 13) & 1u);
        magnitude &= 0xFFFFE000u;
        if (magnitude >= 0x47800000u)
        {
            magnitude = 0x7F800000u; // above the largest half (65504): infinity, as a conversion would give
        }

        return Interop.IntAsFloat(sign | magnitude);
    }

    /// <summary>The i-th signed byte of a word of four packed int8 values (byte 0 = lowest bits).</summary>
    public static int SignedByte(int word, int i) => (word << (24 - 8 * i)) >> 24;

    /// <summary>
    /// Dot product of 16 ternary codes (2 bits each, value = code - 1, element e at bits 2e..2e+1) with 16 int8
    /// activations packed four per int (a0..a3, element e in byte e % 4 of a[e / 4]).
    /// </summary>
    public static int TernaryDot16(uint codes, int a0, int a1, int a2, int a3) =>
        TernaryDot4(codes, a0) + TernaryDot4(codes >> 8, a1) + TernaryDot4(codes >> 16, a2) + TernaryDot4(codes >> 24, a3);

    private static int TernaryDot4(uint codes, int activations)
    {
        int sum = 0;
        for (int e = 0; e < 4; e++)
        {
            int weight = (int)((codes >> (2 * e)) & 3u) - 1;
            sum += weight * SignedByte(activations, e);
        }

        return sum;
    }
}
