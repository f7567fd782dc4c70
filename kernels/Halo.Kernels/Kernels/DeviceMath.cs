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

    /// <summary>
    /// Dot product of 16 ternary codes with 16 int8 activations packed four per int (element 4j + i in byte i of
    /// a<sub>j</sub>), in the weight layout of <see cref="Layout.TernaryLayout"/>: element 4j + i's code at bits
    /// 8i + 2j. One word against one token; the kernels build the <see cref="TernaryWord"/> once and reuse it.
    /// </summary>
    public static int TernaryDot16(uint codes, int a0, int a1, int a2, int a3) => TernaryWord.From(codes).Dot(a0, a1, a2, a3);
}

/// <summary>
/// One weight word's 16 ternary codes as byte masks, built once per word and applied to every token of a
/// matmul. The codes of activation int j are the four bytes of <c>codes >> 2j</c> (each byte's low 2 bits):
/// 2 (weight +1) has the high bit set, 1 (weight 0) the low bit, 0 (weight -1) neither. A token's dot product
/// is then two logic operations and a byte sum per activation int, where decoding each weight and
/// sign-extending each activation took about six operations an element.
/// </summary>
internal struct TernaryWord
{
    /// <summary>Per activation int: byte 0x80 where the weight is +1, 0x7F otherwise.</summary>
    public uint Flip0, Flip1, Flip2, Flip3;

    /// <summary>Per activation int: byte 0x00 where the weight is 0, 0xFF otherwise.</summary>
    public uint Keep0, Keep1, Keep2, Keep3;

    /// <summary>128 x (number of +1 weights) + 127 x (number of -1 weights): what the byte sums add to the dot product.</summary>
    public int Bias;

    public static TernaryWord From(uint codes)
    {
        // weight +1 is code 2 (high bit of its field), weight -1 code 0 (neither bit)
        int plus = IntrinsicMath.PopCount(codes & 0xAAAAAAAAu);
        int minus = 16 - IntrinsicMath.PopCount((codes | (codes >> 1)) & 0x55555555u);
        return new TernaryWord
        {
            Flip0 = Flip(codes),
            Flip1 = Flip(codes >> 2),
            Flip2 = Flip(codes >> 4),
            Flip3 = Flip(codes >> 6),
            Keep0 = Keep(codes),
            Keep1 = Keep(codes >> 2),
            Keep2 = Keep(codes >> 4),
            Keep3 = Keep(codes >> 6),
            Bias = 128 * plus + 127 * minus,
        };
    }

    /// <summary>
    /// The exact sum of w<sub>e</sub> a<sub>e</sub>. Byte e of <c>(a ^ Flip) &amp; Keep</c> is a<sub>e</sub> + 128
    /// for weight +1 (the int8 read as unsigned after flipping its sign bit), 255 - (a<sub>e</sub> + 128) for -1
    /// and 0 for 0, so the bytes add up to the dot product plus <see cref="Bias"/>. They are summed in two 16-bit
    /// lanes, each at most 8 x 255.
    /// </summary>
    public readonly int Dot(int a0, int a1, int a2, int a3)
    {
        uint lanes = ByteLanes(a0, Flip0, Keep0) + ByteLanes(a1, Flip1, Keep1) + ByteLanes(a2, Flip2, Keep2) + ByteLanes(a3, Flip3, Keep3);
        return (int)((lanes & 0xFFFFu) + (lanes >> 16)) - Bias;
    }

    private static uint Flip(uint codes) => (((codes >> 1) & 0x01010101u) * 0xFFu) ^ 0x7F7F7F7Fu;

    private static uint Keep(uint codes) => ~((codes & 0x01010101u) * 0xFFu);

    /// <summary>The four bytes of the masked activations added pairwise into two 16-bit lanes.</summary>
    private static uint ByteLanes(int activations, uint flip, uint keep)
    {
        uint bytes = ((uint)activations ^ flip) & keep;
        return (bytes & 0x00FF00FFu) + ((bytes >> 8) & 0x00FF00FFu);
    }
}
