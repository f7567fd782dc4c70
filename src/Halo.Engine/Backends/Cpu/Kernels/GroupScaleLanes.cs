using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// How the 4-bit and 6-bit head kernels (<see cref="Int4MatVec"/>, <see cref="Int6MatVec"/>) put a 128-column block's
/// group scales (one signed byte per group of 32 or 64 columns) on the int16 lanes of its pair sums for vpmaddwd:
/// vpshufb controls that copy each lane's scale byte into both halves of the lane, so that an arithmetic shift right
/// by 8 sign-extends it (the controls are built once: no allocation per call).
/// </summary>
internal static unsafe class GroupScaleLanes
{
    private static readonly Vector512<byte> Low32 = Control512(32, 0), High32 = Control512(32, 64);
    private static readonly Vector512<byte> Low64 = Control512(64, 0), High64 = Control512(64, 64);
    private static readonly Vector512<byte> Paired32 = PairedControl512(32), Paired64 = PairedControl512(64);
    private static readonly Vector256<byte> Broadcast0 = Control256(0), Broadcast1 = Control256(1);
    private static readonly Vector256<byte> Broadcast2 = Control256(2), Broadcast3 = Control256(3);

    /// <summary>AVX-512: each 128-bit lane of a pair-sum vector covers 16 columns, so it takes one group's scale; the
    /// low half of a block (columns 0..63) spans lanes 0..3, the high half (64..127) the same lanes of the next vector.</summary>
    public static void Avx512Controls(int groupSize, out Vector512<byte> low, out Vector512<byte> high)
    {
        low = groupSize == 32 ? Low32 : Low64;
        high = groupSize == 32 ? High32 : High64;
    }

    /// <summary>The 4 group-scale bytes of a block as sign-extended int16 lanes for its low and high 64 columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Avx512Scales(byte* scales, Vector512<byte> low, Vector512<byte> high, out Vector512<short> sLow, out Vector512<short> sHigh)
    {
        Vector512<byte> s = Vector512.Create(Unsafe.ReadUnaligned<uint>(scales)).AsByte();
        sLow = Avx512BW.ShiftRightArithmetic(Avx512BW.Shuffle(s, low).AsInt16(), 8);
        sHigh = Avx512BW.ShiftRightArithmetic(Avx512BW.Shuffle(s, high).AsInt16(), 8);
    }

    /// <summary>
    /// AVX-512, the 6-bit head's paired layout (Int6Matrix.PairedColumn): 128-bit lane L of a pair-sum vector covers
    /// columns 32 L .. 32 L + 31 of the block, one group.
    /// </summary>
    public static Vector512<byte> Avx512PairedControl(int groupSize) => groupSize == 32 ? Paired32 : Paired64;

    /// <summary>The block's group scales as sign-extended int16 lanes of a paired pair-sum vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<short> Avx512PairedScales(byte* scales, Vector512<byte> control) =>
        Avx512BW.ShiftRightArithmetic(Avx512BW.Shuffle(Vector512.Create(Unsafe.ReadUnaligned<uint>(scales)).AsByte(), control).AsInt16(), 8);

    /// <summary>AVX2: a 256-bit vector of pair sums covers 32 columns, one group; the four quarters of a block (columns
    /// 0, 32, 64, 96) take the scale of the group they start in.</summary>
    public static void Avx2Controls(int groupSize, out Vector256<byte> q0, out Vector256<byte> q1, out Vector256<byte> q2, out Vector256<byte> q3)
    {
        q0 = Broadcast0;
        q1 = groupSize == 32 ? Broadcast1 : Broadcast0;
        q2 = groupSize == 32 ? Broadcast2 : Broadcast1;
        q3 = groupSize == 32 ? Broadcast3 : Broadcast1;
    }

    /// <summary>One quarter's scale, sign-extended on every int16 lane, from the block's scale bytes broadcast in <paramref name="s"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> Avx2Scale(Vector256<byte> s, Vector256<byte> control) =>
        Avx2.ShiftRightArithmetic(Avx2.Shuffle(s, control).AsInt16(), 8);

    /// <summary>vpshufb control: int16 lane k of 128-bit lane L gets (twice) the scale byte of the group holding column firstCol + 16 L.</summary>
    private static Vector512<byte> Control512(int groupSize, int firstCol)
    {
        var c = new byte[64];
        for (int lane = 0; lane < 4; lane++)
        {
            for (int k = 0; k < 16; k++)
            {
                c[lane * 16 + k] = (byte)((firstCol + lane * 16) / groupSize);
            }
        }

        return Vector512.Create(c);
    }

    /// <summary>vpshufb control: every int16 lane of 128-bit lane L gets (twice) the scale byte of the group holding column 32 L.</summary>
    private static Vector512<byte> PairedControl512(int groupSize)
    {
        var c = new byte[64];
        for (int lane = 0; lane < 4; lane++)
        {
            c.AsSpan(lane * 16, 16).Fill((byte)(lane * 32 / groupSize));
        }

        return Vector512.Create(c);
    }

    /// <summary>vpshufb control: every int16 lane gets scale byte <paramref name="index"/> in both halves.</summary>
    private static Vector256<byte> Control256(int index) => Vector256.Create((ushort)(index << 8 | index)).AsByte();
}
