using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// y [rows] = M x for an <see cref="Int6Matrix"/> M over a range of row tiles: <see cref="Int4MatVec"/>'s integer dot
/// product with 6-bit codes and a block-floating-point int8 input. Per 64 columns the codes are rebuilt from the
/// 4-bit plane and the 2-bit plane (one variable shift puts each column's two top bits on bits 4..5, one bit select
/// merges them with the nibble), then codes (0..63) times the int8 input by vpmaddubsw (pair sums <= 2 * 63 * 127, no
/// saturation), pair sums times the group's weight scale by vpmaddwd, and dot = sum - 32 * sum_g(scale_g * groupSum_g)
/// undoes the +32 offset; one float multiply at the end.
/// <para>
/// The input (<see cref="QuantizeInput"/>): a token's largest channels set the step of a plain int8 input, and on real
/// hidden states a few outlier channels make it coarse enough to be most of an int8 head's error (see
/// LmHeadAccuracyTests). Here each group of columns takes its own step, the token's step times 2^k with k in
/// 0..<see cref="MaxShift"/> (groups without outliers get up to 16x finer steps), and the kernel multiplies the
/// products of vpmaddwd by 2^k (one vpsllvd per 64 columns; word shifts are slow on Zen): the sum stays one integer
/// per row. Pair sums times scale * 2^k reach 2 * 16002 * 127 * 16 per int32 lane and vpmaddwd, so lanes are added
/// into an int64 every 16 blocks (8 on AVX2, whose lanes take 4 per block).
/// </para>
/// AVX-VNNI's vpdpbusd would sum 4 products before the group scale could be applied, needing a vpmulld per group
/// instead of the vpmaddwd: no gain, so the AVX2 path uses vpmaddubsw as well.
/// </summary>
public static unsafe class Int6MatVec
{
    /// <summary>Largest k of a group's input step d * 2^k: the finest step is 1/16 of a plain int8 input's.</summary>
    public const int MaxShift = 4;

    /// <summary>Tokens whose logits one pass of <see cref="RunBatch"/> over the head computes (the backend groups
    /// decoding sequences by the int8 head's batch, so the two are one number).</summary>
    public const int BatchTokens = Int8MatVec.BatchTokens;

    private const int PrefetchAhead = 8192;
    private const int R = Int6Matrix.TileRows;
    private const int TopPlane = R * Int6Matrix.NibbleBytes; // where a block's 2-bit planes start
    private const int ShiftBytes = 128;                      // per block: 2 vectors of 16 int32 shift counts

    // vpshufb controls that spread the 4 group-scale bytes of a block over int16 lanes, the byte in both halves
    // so that an arithmetic shift right by 8 sign-extends it (built once: no allocation per call).
    private static readonly Vector512<byte> LowScale32 = ScaleShuffle512(32, 0), HighScale32 = ScaleShuffle512(32, 64);
    private static readonly Vector512<byte> LowScale64 = ScaleShuffle512(64, 0), HighScale64 = ScaleShuffle512(64, 64);

    // The 2-bit plane (32 bytes) sits in both 256-bit halves of a vector; per half, the word shift that brings the
    // field of its columns to bits 4..5: columns 0..31 bits 0..1 (left 4), 32..63 bits 2..3 (left 2),
    // 64..95 bits 4..5 (none), 96..127 bits 6..7 (right 2).
    private static readonly Vector512<ushort> LowShift = HalfShifts(4, 2), HighShift = HalfShifts(0, 2);

    public static bool UseAvx512 { get; } = Avx512BW.IsSupported;

    public static bool UseAvx2 { get; } = Avx2.IsSupported;

    /// <summary>
    /// Bytes of one token's input for <paramref name="m"/> (<see cref="QuantizeInput"/>):
    /// q [PaddedCols] sbyte, the kernel's shift counts [blocks][2][16] uint, the group sums of q times 2^k
    /// [ScaleStride] int, k [ScaleStride] byte (padded to 64), the step d (float, padded to 64).
    /// </summary>
    public static int InputBytes(Int6Matrix m) => KAt(m) + (m.ScaleStride + 63) / 64 * 64 + 64;

    private static int ShiftsAt(Int6Matrix m) => m.PaddedCols;

    private static int SumsAt(Int6Matrix m) => ShiftsAt(m) + m.PaddedCols / Int6Matrix.BlockCols * ShiftBytes;

    private static int KAt(Int6Matrix m) => SumsAt(m) + m.ScaleStride * sizeof(int);

    private static float Step(Int6Matrix m, byte* input) => *(float*)(input + InputBytes(m) - 64);

    /// <summary>
    /// One token's input for <paramref name="m"/> from h [n] into <paramref name="input"/> [<see cref="InputBytes"/>]:
    /// d = max|h| / (127 * 2^MaxShift); group g takes the smallest k in 0..MaxShift with max|h_g| <= 127 d 2^k and
    /// q = round(h / (d 2^k)), so x ~ q * d * 2^k (zero past n).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeInput(Int6Matrix m, float* h, int n, byte* input)
    {
        sbyte* q = (sbyte*)input;
        uint* shifts = (uint*)(input + ShiftsAt(m));
        int* sums = (int*)(input + SumsAt(m));
        byte* k = input + KAt(m);
        float amax = 0f;
        for (int i = 0; i < n; i++)
        {
            amax = MathF.Max(amax, MathF.Abs(h[i]));
        }

        float d = amax / (127 << MaxShift);
        for (int g = 0; g < m.ScaleStride; g++)
        {
            int first = Math.Min(n, g * m.GroupSize), end = Math.Min(n, (g + 1) * m.GroupSize);
            float gmax = 0f;
            for (int i = first; i < end; i++)
            {
                gmax = MathF.Max(gmax, MathF.Abs(h[i]));
            }

            int shift = 0;
            while (shift < MaxShift && gmax > amax * (1 << shift) / (1 << MaxShift))
            {
                shift++;
            }

            float inverse = amax > 0 ? (127 << (MaxShift - shift)) / amax : 0f;
            int sum = 0;
            for (int i = g * m.GroupSize; i < (g + 1) * m.GroupSize && g < m.Groups; i++)
            {
                int v = i < n ? Math.Clamp((int)MathF.Round(h[i] * inverse), -127, 127) : 0;
                q[i] = (sbyte)v;
                sum += v;
            }

            k[g] = (byte)shift;
            sums[g] = sum << shift;
        }

        // Shift counts per int32 lane of the AVX-512 kernel's vpmaddwd results: lane j of the low (high) vector of
        // block b sums columns 128b (+ 64) + 16 (j / 4) onwards.
        for (int b = 0; b < m.PaddedCols / Int6Matrix.BlockCols; b++)
        {
            for (int j = 0; j < 32; j++)
            {
                int column = b * Int6Matrix.BlockCols + (j / 16) * 64 + (j % 16) / 4 * 16;
                shifts[b * 32 + j] = k[column / m.GroupSize];
            }
        }

        *(float*)(input + InputBytes(m) - 64) = d;
    }

    /// <summary>y for the rows of tiles [tileStart, tileEnd) from one token's <paramref name="input"/> (<see cref="QuantizeInput"/>).</summary>
    public static void Run(Int6Matrix m, byte* input, float* y, int tileStart, int tileEnd)
    {
        if (UseAvx512)
        {
            RunAvx512(m, input, y, tileStart, tileEnd);
        }
        else if (UseAvx2)
        {
            RunAvx2(m, input, y, tileStart, tileEnd);
        }
        else
        {
            RunScalar(m, input, y, tileStart, tileEnd);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunAvx512(Int6Matrix m, byte* input, float* y, int tileStart, int tileEnd)
    {
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        int groupsPerBlock = Int6Matrix.BlockCols / m.GroupSize;
        sbyte* q = (sbyte*)input;
        uint* shifts = (uint*)(input + ShiftsAt(m));

        // Each 128-bit lane of a pair-sum vector covers 16 columns, so it takes one group's scale: the low half
        // of a block (columns 0..63) spans lanes 0..3, the high half (64..127) the same lanes of the next vector.
        Vector512<byte> lowScale = m.GroupSize == 32 ? LowScale32 : LowScale64, highScale = m.GroupSize == 32 ? HighScale32 : HighScale64;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            byte* scales = tile + R * sizeof(float);
            byte* block = tile + m.HeaderBytes;
            long dot0 = 0, dot1 = 0, dot2 = 0, dot3 = 0;
            for (int chunk = 0; chunk < blocks; chunk += 16)
            {
                Vector512<int> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
                for (int b = chunk; b < Math.Min(blocks, chunk + 16); b++)
                {
                    Prefetch(block + PrefetchAhead);
                    Vector512<sbyte> x0 = Vector512.Load(q + b * Int6Matrix.BlockCols);
                    Vector512<sbyte> x1 = Vector512.Load(q + b * Int6Matrix.BlockCols + 64);
                    Vector512<uint> kLow = Vector512.Load(shifts + b * 32), kHigh = Vector512.Load(shifts + b * 32 + 16);
                    byte* s = scales + b * groupsPerBlock;
                    acc0 += Block512(block, block + TopPlane, s, x0, x1, lowScale, highScale, kLow, kHigh);
                    acc1 += Block512(block + 64, block + TopPlane + 32, s + m.ScaleStride, x0, x1, lowScale, highScale, kLow, kHigh);
                    acc2 += Block512(block + 128, block + TopPlane + 64, s + 2 * m.ScaleStride, x0, x1, lowScale, highScale, kLow, kHigh);
                    acc3 += Block512(block + 192, block + TopPlane + 96, s + 3 * m.ScaleStride, x0, x1, lowScale, highScale, kLow, kHigh);
                    block += R * Int6Matrix.BlockBytes;
                }

                dot0 += Sum(acc0);
                dot1 += Sum(acc1);
                dot2 += Sum(acc2);
                dot3 += Sum(acc3);
            }

            Finish(m, t, 0, dot0, scales, input, y);
            Finish(m, t, 1, dot1, scales + m.ScaleStride, input, y);
            Finish(m, t, 2, dot2, scales + 2 * m.ScaleStride, input, y);
            Finish(m, t, 3, dot3, scales + 3 * m.ScaleStride, input, y);
        }
    }

    /// <summary>
    /// The same for <paramref name="n"/> tokens at once (batched decode), so the head is read from memory once per
    /// step instead of once per sequence: token k's input at inputs + k * <see cref="InputBytes"/>, its logits y[k].
    /// AVX-512BW takes <see cref="BatchTokens"/> tokens per pass, decoding each row's codes once for all of them;
    /// elsewhere one token at a time.
    /// </summary>
    public static void RunBatch(Int6Matrix m, byte* inputs, float** y, int n, int tileStart, int tileEnd)
    {
        if (UseAvx512 && n == BatchTokens)
        {
            RunBatchAvx512(m, inputs, y, tileStart, tileEnd);
            return;
        }

        for (int k = 0; k < n; k++)
        {
            Run(m, inputs + (long)k * InputBytes(m), y[k], tileStart, tileEnd);
        }
    }

    /// <summary><see cref="RunBatch"/> for <see cref="BatchTokens"/> tokens: one row at a time, one accumulator per token.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunBatchAvx512(Int6Matrix m, byte* inputs, float** y, int tileStart, int tileEnd)
    {
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        int groupsPerBlock = Int6Matrix.BlockCols / m.GroupSize;
        long stride = InputBytes(m);
        byte* shifts = inputs + ShiftsAt(m);
        Vector512<byte> lowScale = m.GroupSize == 32 ? LowScale32 : LowScale64, highScale = m.GroupSize == 32 ? HighScale32 : HighScale64;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            for (int i = 0; i < R && t * R + i < m.Rows; i++)
            {
                byte* rowScales = tile + R * sizeof(float) + i * m.ScaleStride;
                byte* block = tile + m.HeaderBytes;
                long d0 = 0, d1 = 0, d2 = 0, d3 = 0, d4 = 0, d5 = 0, d6 = 0, d7 = 0;
                for (int chunk = 0; chunk < blocks; chunk += 16)
                {
                    Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                    for (int b = chunk; b < Math.Min(blocks, chunk + 16); b++)
                    {
                        // Row 0's pass fetches the next tile; rows 1..3 find this one in cache.
                        if (i == 0)
                        {
                            Prefetch(block + PrefetchAhead);
                        }

                        Codes(block + i * Int6Matrix.NibbleBytes, block + TopPlane + i * Int6Matrix.TopBytes, out Vector512<byte> low, out Vector512<byte> high);
                        Scales(rowScales + b * groupsPerBlock, lowScale, highScale, out Vector512<short> sLow, out Vector512<short> sHigh);
                        byte* x = inputs + b * Int6Matrix.BlockCols, k = shifts + b * ShiftBytes;
                        a0 += Dot(low, high, x, k, sLow, sHigh);
                        a1 += Dot(low, high, x + stride, k + stride, sLow, sHigh);
                        a2 += Dot(low, high, x + 2 * stride, k + 2 * stride, sLow, sHigh);
                        a3 += Dot(low, high, x + 3 * stride, k + 3 * stride, sLow, sHigh);
                        a4 += Dot(low, high, x + 4 * stride, k + 4 * stride, sLow, sHigh);
                        a5 += Dot(low, high, x + 5 * stride, k + 5 * stride, sLow, sHigh);
                        a6 += Dot(low, high, x + 6 * stride, k + 6 * stride, sLow, sHigh);
                        a7 += Dot(low, high, x + 7 * stride, k + 7 * stride, sLow, sHigh);
                        block += R * Int6Matrix.BlockBytes;
                    }

                    d0 += Sum(a0);
                    d1 += Sum(a1);
                    d2 += Sum(a2);
                    d3 += Sum(a3);
                    d4 += Sum(a4);
                    d5 += Sum(a5);
                    d6 += Sum(a6);
                    d7 += Sum(a7);
                }

                Finish(m, t, i, d0, rowScales, inputs, y[0]);
                Finish(m, t, i, d1, rowScales, inputs + stride, y[1]);
                Finish(m, t, i, d2, rowScales, inputs + 2 * stride, y[2]);
                Finish(m, t, i, d3, rowScales, inputs + 3 * stride, y[3]);
                Finish(m, t, i, d4, rowScales, inputs + 4 * stride, y[4]);
                Finish(m, t, i, d5, rowScales, inputs + 5 * stride, y[5]);
                Finish(m, t, i, d6, rowScales, inputs + 6 * stride, y[6]);
                Finish(m, t, i, d7, rowScales, inputs + 7 * stride, y[7]);
            }
        }
    }

    /// <summary>One row's block (128 columns) against x: 16 int32 partial dots, group scales times 2^k applied.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Block512(byte* nibbles, byte* top, byte* scales, Vector512<sbyte> x0, Vector512<sbyte> x1,
        Vector512<byte> lowScale, Vector512<byte> highScale, Vector512<uint> kLow, Vector512<uint> kHigh)
    {
        Codes(nibbles, top, out Vector512<byte> low, out Vector512<byte> high);
        Scales(scales, lowScale, highScale, out Vector512<short> sLow, out Vector512<short> sHigh);
        return Avx512F.ShiftLeftLogicalVariable(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(low, x0), sLow), kLow)
            + Avx512F.ShiftLeftLogicalVariable(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(high, x1), sHigh), kHigh);
    }

    /// <summary>One token's block of input x [128] and shift counts k [2][16] against a row's decoded block and group scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot(Vector512<byte> low, Vector512<byte> high, byte* x, byte* k, Vector512<short> sLow, Vector512<short> sHigh) =>
        Avx512F.ShiftLeftLogicalVariable(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(low, Vector512.Load((sbyte*)x)), sLow), Vector512.Load((uint*)k))
        + Avx512F.ShiftLeftLogicalVariable(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(high, Vector512.Load((sbyte*)x + 64)), sHigh), Vector512.Load((uint*)k + 16));

    /// <summary>A row's 128 codes (0..63) of one block: columns 0..63 in <paramref name="low"/>, 64..127 in <paramref name="high"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Codes(byte* nibbles, byte* top, out Vector512<byte> low, out Vector512<byte> high)
    {
        Vector512<byte> nibble = Vector512.Create((byte)0x0F), field = Vector512.Create((byte)0x30);
        Vector512<byte> packed = Vector512.Load(nibbles);
        Vector256<byte> plane = Vector256.Load(top);
        Vector512<ushort> both = Vector512.Create(plane, plane).AsUInt16();
        low = Vector512.ConditionalSelect(nibble, packed, Avx512BW.ShiftLeftLogicalVariable(both, LowShift).AsByte() & field);
        high = Vector512.ConditionalSelect(nibble, (packed.AsUInt16() >> 4).AsByte(), Avx512BW.ShiftRightLogicalVariable(both, HighShift).AsByte() & field);
    }

    /// <summary>The 4 group-scale bytes of a block as sign-extended int16 lanes for its low and high 64 columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scales(byte* scales, Vector512<byte> lowScale, Vector512<byte> highScale, out Vector512<short> sLow, out Vector512<short> sHigh)
    {
        Vector512<byte> s = Vector512.Create(Unsafe.ReadUnaligned<uint>(scales)).AsByte();
        sLow = Avx512BW.ShiftRightArithmetic(Avx512BW.Shuffle(s, lowScale).AsInt16(), 8);
        sHigh = Avx512BW.ShiftRightArithmetic(Avx512BW.Shuffle(s, highScale).AsInt16(), 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunAvx2(Int6Matrix m, byte* input, float* y, int tileStart, int tileEnd)
    {
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        int groupsPerBlock = Int6Matrix.BlockCols / m.GroupSize;
        sbyte* q = (sbyte*)input;
        byte* k = input + KAt(m);
        Vector256<byte> nibble = Vector256.Create((byte)0x0F), field = Vector256.Create((byte)0x30);

        // A 256-bit vector of pair sums covers 32 columns: one group. The four quarters of a block
        // (columns 0, 32, 64, 96) take the scale (times 2^k) of the group they start in.
        int g1 = m.GroupSize == 32 ? 1 : 0, g2 = m.GroupSize == 32 ? 2 : 1, g3 = m.GroupSize == 32 ? 3 : 1;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            byte* scales = tile + R * sizeof(float);
            for (int i = 0; i < R; i++)
            {
                byte* block = tile + m.HeaderBytes;
                sbyte* rowScales = (sbyte*)scales + i * m.ScaleStride;
                long dot = 0;
                for (int chunk = 0; chunk < blocks; chunk += 8)
                {
                    Vector256<int> acc = default;
                    for (int b = chunk; b < Math.Min(blocks, chunk + 8); b++)
                    {
                        if (i == 0)
                        {
                            Prefetch(block + PrefetchAhead);
                        }

                        sbyte* x = q + b * Int6Matrix.BlockCols;
                        byte* nibbles = block + i * Int6Matrix.NibbleBytes;
                        Vector256<byte> packed0 = Vector256.Load(nibbles), packed1 = Vector256.Load(nibbles + 32);
                        Vector256<ushort> top = Vector256.Load(block + TopPlane + i * Int6Matrix.TopBytes).AsUInt16();
                        Vector256<byte> c0 = Vector256.ConditionalSelect(nibble, packed0, (top << 4).AsByte() & field);
                        Vector256<byte> c1 = Vector256.ConditionalSelect(nibble, packed1, (top << 2).AsByte() & field);
                        Vector256<byte> c2 = Vector256.ConditionalSelect(nibble, (packed0.AsUInt16() >> 4).AsByte(), top.AsByte() & field);
                        Vector256<byte> c3 = Vector256.ConditionalSelect(nibble, (packed1.AsUInt16() >> 4).AsByte(), (top >> 2).AsByte() & field);
                        int g = b * groupsPerBlock;
                        acc += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c0, Vector256.Load(x)), Scale(rowScales, k, g))
                            + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c1, Vector256.Load(x + 32)), Scale(rowScales, k, g + g1))
                            + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c2, Vector256.Load(x + 64)), Scale(rowScales, k, g + g2))
                            + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c3, Vector256.Load(x + 96)), Scale(rowScales, k, g + g3));
                        block += R * Int6Matrix.BlockBytes;
                    }

                    dot += Vector256.Sum(Vector256.WidenLower(acc) + Vector256.WidenUpper(acc));
                }

                Finish(m, t, i, dot, (byte*)rowScales, input, y);
            }
        }
    }

    /// <summary>Group g's weight scale times its input's 2^k, in every int16 lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Scale(sbyte* rowScales, byte* k, int g) => Vector256.Create((short)(rowScales[g] << k[g]));

    /// <summary>Plain loops over the signed codes q = code - 32, one integer sum per 32 columns times its group's scale * 2^k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunScalar(Int6Matrix m, byte* input, float* y, int tileStart, int tileEnd)
    {
        const int Quarter = Int6Matrix.TopBytes;
        sbyte* q = (sbyte*)input;
        byte* k = input + KAt(m);
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            for (int i = 0; i < R && t * R + i < m.Rows; i++)
            {
                sbyte* scales = (sbyte*)tile + R * sizeof(float) + i * m.ScaleStride;
                long dot = 0;
                for (int b = 0; b < blocks; b++)
                {
                    byte* nibbles = m.Block(t, b) + i * Int6Matrix.NibbleBytes;
                    byte* top = m.Block(t, b) + TopPlane + i * Int6Matrix.TopBytes;
                    for (int quarter = 0; quarter < 4; quarter++)
                    {
                        int col = quarter * Quarter, sum = 0;
                        for (int j = 0; j < Quarter; j++)
                        {
                            byte packed = nibbles[(col + j) % Int6Matrix.NibbleBytes];
                            int low = quarter < 2 ? packed & 0xF : packed >> 4;
                            int code = low | ((top[j] >> (2 * quarter)) & 3) << 4;
                            sum += (code - Int6Matrix.Offset) * q[b * Int6Matrix.BlockCols + col + j];
                        }

                        int g = (b * Int6Matrix.BlockCols + col) / m.GroupSize;
                        dot += ((long)sum * scales[g]) << k[g];
                    }
                }

                y[t * R + i] = dot * (((float*)tile)[i] * Step(m, input));
            }
        }
    }

    /// <summary>y of row i of tile t from its summed code * q * scale * 2^k products: takes back the +32 code offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(Int6Matrix m, int t, int i, long sum, byte* rowScales, byte* input, float* y)
    {
        int r = t * R + i;
        if (r >= m.Rows)
        {
            return;
        }

        // sum_g scale_g * (groupSum_g * 2^k_g): at most 127 * 65024 per group, 64 groups per lane at 16384 columns.
        int* sums = (int*)(input + SumsAt(m));
        Vector256<int> offset = default;
        for (int g = 0; g < m.ScaleStride; g += 8)
        {
            offset += Avx2.MultiplyLow(Avx2.ConvertToVector256Int32((sbyte*)rowScales + g), Vector256.Load(sums + g));
        }

        long dot = sum - (long)Int6Matrix.Offset * Vector256.Sum(Vector256.WidenLower(offset) + Vector256.WidenUpper(offset));
        y[r] = dot * (((float*)m.Tile(t))[i] * Step(m, input));
    }

    /// <summary>The 6 cache lines of one block of a tile (4 rows' 4-bit and 2-bit planes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(byte* block)
    {
        Sse.Prefetch0(block);
        Sse.Prefetch0(block + 64);
        Sse.Prefetch0(block + 128);
        Sse.Prefetch0(block + 192);
        Sse.Prefetch0(block + 256);
        Sse.Prefetch0(block + 320);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Sum(Vector512<int> v) => Vector512.Sum(Vector512.WidenLower(v) + Vector512.WidenUpper(v));

    /// <summary>vpshufb control: int16 lane k of 128-bit lane L gets (twice) the scale byte of the group holding column firstCol + 16 L.</summary>
    private static Vector512<byte> ScaleShuffle512(int groupSize, int firstCol)
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

    /// <summary>Word shift counts: <paramref name="lower"/> for the low 256 bits, <paramref name="upper"/> for the high.</summary>
    private static Vector512<ushort> HalfShifts(ushort lower, ushort upper) =>
        Vector512.Create(Vector256.Create(lower), Vector256.Create(upper));
}
