using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// y [rows] = M x for an <see cref="Int6Matrix"/> M over a range of row tiles: <see cref="Int4MatVec"/>'s integer dot
/// product with 6-bit codes and an int8 input whose step is set per class of columns. Per 64 columns the codes are
/// rebuilt from the 4-bit plane and the 2-bit plane (one variable shift puts each column's two top bits on bits 4..5,
/// one bit select merges them with the nibble), then codes (0..63) times the int8 input by vpmaddubsw (pair sums
/// <= 2 * 63 * 127, no saturation) and pair sums times the group scale by vpmaddwd into int32 lanes.
/// <para>
/// The input (<see cref="QuantizeInput"/>): a token's largest channels set the step of a plain int8 input, and on real
/// hidden states a few outlier channels make it coarse enough to be most of an int8 head's error (see
/// LmHeadAccuracyTests). An int32 lane of the kernels' accumulators always sums the same columns of every 128-column
/// block (4 in the one-token pass, 8 in the batched one), so the columns fall into 16 classes
/// (<see cref="Int6Matrix.ClassOf"/>; each one-token lane lies in one) that each take their own step d * 2^k, k in
/// 0..<see cref="MaxShift"/>, up to 16x finer than a plain int8 input's where no outlier sits, and the lanes are
/// shifted by k once per row, after the last block. The per-block work is exactly the plain int8 input's. Lanes take at most 2 * 16002 * 127 per block: 128 blocks (16384 columns) fit in int32.
/// dot = sum - 32 * sum_g(scale_g * sum over the group of q * 2^k) then undoes the +32 code offset. The batched pass
/// (<see cref="RunBatch"/>) turns the operands round, signed codes against inputs + 128 (pair sums <= 2 * 32 * 255,
/// lanes <= 2 * 16320 * 127 per block), so that its correction depends on the row only (Int6Matrix.InputCorrections).
/// </para>
/// AVX-VNNI's vpdpbusd would sum 4 products before the group scale could be applied, needing a vpmulld per group
/// instead of the vpmaddwd: no gain, so the AVX2 path uses vpmaddubsw as well.
/// </summary>
public static unsafe class Int6MatVec
{
    /// <summary>Largest k of a class's input step d * 2^k: the finest step is 1/16 of a plain int8 input's.</summary>
    public const int MaxShift = 4;

    /// <summary>
    /// The one-token kernels' int32 lanes per block: lane l sums columns 4l..4l+3 of every block, all of one input
    /// class (<see cref="Int6Matrix.ClassOf"/>), whose k it takes.
    /// </summary>
    public const int OneTokenLanes = Int6Matrix.BlockCols / 4;

    // The batched pass shifts a class's int32 lane by its k without widening up to this many columns: a class's exact
    // sum of q * groupScale * code is then at most 256 columns x 32 x 127 x 127, and 16 times that fits int32 (the
    // test at the extremes overflowed at 8192).
    private const int NarrowShiftCols = 4096;

    /// <summary>Tokens whose logits one pass of <see cref="RunBatch"/> over the head computes (the backend groups
    /// decoding sequences by the int8 head's batch, so the two are one number).</summary>
    public const int BatchTokens = Int8MatVec.BatchTokens;

    private const int PrefetchAhead = 8192;
    private const int R = Int6Matrix.TileRows;
    private const int TopPlane = R * Int6Matrix.NibbleBytes; // where a block's 2-bit planes start

    // The 2-bit plane (32 bytes) sits in both 256-bit halves of a vector; per half, the word shift that brings the
    // field of its columns to bits 4..5: columns 0..31 bits 0..1 (left 4), 32..63 bits 2..3 (left 2),
    // 64..95 bits 4..5 (none), 96..127 bits 6..7 (right 2).
    private static readonly Vector512<ushort> LowShift = HalfShifts(4, 2), HighShift = HalfShifts(0, 2);

    // Vnni512Kernels.Int6HeadRowPair's read-only vectors (Int6PairCall.Constants), per group size.
    private static readonly byte* PairConstants32 = PairConstants(32), PairConstants64 = PairConstants(64);

    /// <summary>The 6-bit head's batched pass runs <see cref="Vnni512Kernels"/>'s kernel where they can be used (tests turn it off).</summary>
    public static bool UseVnni512 { get; set; } = Vnni512Kernels.Usable;

    public static bool UseAvx512 { get; } = Avx512BW.IsSupported;

    public static bool UseAvx2 { get; } = Avx2.IsSupported;

    /// <summary>
    /// Bytes of one token's input for <paramref name="m"/> (<see cref="QuantizeInput"/>): q [PaddedCols] sbyte, the
    /// same + 128 in the batched pass's paired order (<see cref="Int6Matrix.PairedColumn"/>) [PaddedCols] byte, k per
    /// one-token lane [32] ulong and per class [16] uint, the group sums of q * 2^k [ScaleStride] int, the step d
    /// (float, padded to 64).
    /// </summary>
    public static int InputBytes(Int6Matrix m) => SumsAt(m) + m.ScaleStride * sizeof(int) + 64;

    private static int SumsAt(Int6Matrix m) => 2 * m.PaddedCols + OneTokenLanes * sizeof(ulong) + Int6Matrix.Classes * sizeof(uint);

    private static byte* Unsigned(Int6Matrix m, byte* input) => input + m.PaddedCols;

    private static ulong* Shifts(Int6Matrix m, byte* input) => (ulong*)(input + 2 * m.PaddedCols);

    private static uint* NarrowShifts(Int6Matrix m, byte* input) => (uint*)(Shifts(m, input) + OneTokenLanes);

    private static float Step(Int6Matrix m, byte* input) => *(float*)(input + InputBytes(m) - 64);

    /// <summary>
    /// One token's input for <paramref name="m"/> from h [n] into <paramref name="input"/> [<see cref="InputBytes"/>]:
    /// d = max|h| / (127 * 2^MaxShift); class j (<see cref="Int6Matrix.ClassOf"/>) takes the smallest k in 0..MaxShift
    /// with max over its columns of |h| <= 127 d 2^k, and q = round(h / (d 2^k)), so x ~ q * d * 2^k (zero past n).
    /// </summary>
    public static void QuantizeInput(Int6Matrix m, float* h, int n, byte* input)
    {
        if (UseAvx512 && n == m.PaddedCols)
        {
            QuantizeInputAvx512(m, h, n, input);
        }
        else
        {
            QuantizeInputScalar(m, h, n, input);
        }
    }

    /// <summary>
    /// <see cref="QuantizeInput"/> a 16-column run at a time, for rows of whole 128-column blocks: the same bytes as the
    /// scalar loops (tested), in 1/10 of their ~18 us at 2560 columns, which the batched head paid 8 times a step on
    /// one thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeInputAvx512(Int6Matrix m, float* h, int n, byte* input)
    {
        const int Classes = Int6Matrix.Classes, Quarter = Int6Matrix.BlockCols / 4;
        sbyte* q = (sbyte*)input;
        byte* u = Unsigned(m, input);
        uint* classShifts = NarrowShifts(m, input);
        int* sums = (int*)(input + SumsAt(m));

        // Lane l of quarterMax[k]: the largest |h| over the columns 32 k + l and 32 k + 16 + l of every block, all of
        // class 4 k + l / 4 (Int6Matrix.ClassOf).
        Vector512<float>* quarterMax = stackalloc Vector512<float>[4];
        for (int k = 0; k < 4; k++)
        {
            quarterMax[k] = Vector512<float>.Zero;
        }

        for (int b = 0; b < n; b += Int6Matrix.BlockCols)
        {
            for (int k = 0; k < 4; k++)
            {
                float* x = h + b + k * Quarter;
                quarterMax[k] = Vector512.Max(quarterMax[k], Vector512.Max(Vector512.Abs(Vector512.Load(x)), Vector512.Abs(Vector512.Load(x + 16))));
            }
        }

        float* lanes = (float*)quarterMax;
        float* classMax = stackalloc float[Classes];
        float amax = 0f;
        for (int j = 0; j < Classes; j++)
        {
            classMax[j] = 0f;
            for (int l = 0; l < 4; l++)
            {
                classMax[j] = MathF.Max(classMax[j], lanes[4 * j + l]);
            }

            amax = MathF.Max(amax, classMax[j]);
        }

        float* classInverse = stackalloc float[Classes];
        SetClassSteps(m, input, classMax, amax, classInverse);

        // Per quarter k, lane l: the inverse step and the shift k of class 4 k + l / 4.
        float* inverse = stackalloc float[4 * 16];
        uint* laneShift = stackalloc uint[4 * 16];
        for (int j = 0; j < Classes; j++)
        {
            for (int l = 0; l < 4; l++)
            {
                inverse[4 * j + l] = classInverse[j];
                laneShift[4 * j + l] = classShifts[j];
            }
        }

        Vector512<int> low = Vector512.Create(-127), high = Vector512.Create(127);
        for (int c = 0; c < n; c += 16)
        {
            int k = c % Int6Matrix.BlockCols / Quarter;
            Vector512<int> v = Avx512F.ConvertToVector512Int32(Vector512.Load(h + c) * Vector512.Load(inverse + 16 * k));
            Avx512F.ConvertToVector128SByte(Vector512.Min(Vector512.Max(v, low), high)).Store(q + c);
        }

        // u: run r of a block takes q's run 2 (r % 4) + r / 4 (Int6Matrix.PairedColumn), plus 128.
        Vector128<sbyte> sign = Vector128.Create(unchecked((sbyte)0x80));
        for (int b = 0; b < n; b += Int6Matrix.BlockCols)
        {
            for (int r = 0; r < 8; r++)
            {
                (Vector128.Load(q + b + 16 * (2 * (r % 4) + r / 4)) ^ sign).AsByte().Store(u + b + 16 * r);
            }
        }

        int runsPerGroup = m.GroupSize / 16;
        for (int g = 0; g < m.ScaleStride; g++)
        {
            Vector512<int> acc = Vector512<int>.Zero;
            for (int r = 0; r < runsPerGroup && g < m.Groups; r++)
            {
                int c = g * m.GroupSize + 16 * r;
                Vector512<uint> k = Vector512.Load(laneShift + 16 * (c % Int6Matrix.BlockCols / Quarter));
                acc += Avx512F.ShiftLeftLogicalVariable(Avx512F.ConvertToVector512Int32(Vector128.Load(q + c)), k);
            }

            sums[g] = Vector512.Sum(acc);
        }
    }

    /// <summary>
    /// From the largest |h| of each class (<paramref name="classMax"/> [Classes]) and of the token (amax): each class's
    /// k, the smallest in 0..<see cref="MaxShift"/> with its largest |h| at most amax 2^k / 2^MaxShift, the one-token
    /// lanes' k, the inverse of each class's step into <paramref name="inverse"/> [Classes], and the token's step d.
    /// </summary>
    private static void SetClassSteps(Int6Matrix m, byte* input, float* classMax, float amax, float* inverse)
    {
        uint* classShifts = NarrowShifts(m, input);
        for (int j = 0; j < Int6Matrix.Classes; j++)
        {
            int shift = 0;
            while (shift < MaxShift && classMax[j] > amax * (1 << shift) / (1 << MaxShift))
            {
                shift++;
            }

            classShifts[j] = (uint)shift;
            inverse[j] = amax > 0 ? (127 << (MaxShift - shift)) / amax : 0f;
        }

        ulong* shifts = Shifts(m, input);
        for (int l = 0; l < OneTokenLanes; l++)
        {
            shifts[l] = classShifts[Int6Matrix.ClassOf(4 * l)];
        }

        *(float*)(input + InputBytes(m) - 64) = amax / (127 << MaxShift);
    }

    /// <summary><see cref="QuantizeInput"/> in plain loops, for any row length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeInputScalar(Int6Matrix m, float* h, int n, byte* input)
    {
        const int Classes = Int6Matrix.Classes;
        sbyte* q = (sbyte*)input;
        byte* u = Unsigned(m, input);
        uint* classShifts = NarrowShifts(m, input);
        int* sums = (int*)(input + SumsAt(m));
        float amax = 0f;
        float* classMax = stackalloc float[Classes];
        new Span<float>(classMax, Classes).Clear();
        for (int i = 0; i < n; i++)
        {
            float a = MathF.Abs(h[i]);
            amax = MathF.Max(amax, a);
            classMax[Int6Matrix.ClassOf(i)] = MathF.Max(classMax[Int6Matrix.ClassOf(i)], a);
        }

        float* inverse = stackalloc float[Classes];
        SetClassSteps(m, input, classMax, amax, inverse);
        for (int i = 0; i < m.PaddedCols; i++)
        {
            q[i] = i < n ? (sbyte)Math.Clamp((int)MathF.Round(h[i] * inverse[Int6Matrix.ClassOf(i)]), -127, 127) : (sbyte)0;
        }

        for (int i = 0; i < m.PaddedCols; i++)
        {
            int block = i - i % Int6Matrix.BlockCols;
            u[i] = (byte)(q[block + Int6Matrix.PairedColumn(i % Int6Matrix.BlockCols)] + Int6Matrix.InputShift);
        }

        for (int g = 0; g < m.ScaleStride; g++)
        {
            int sum = 0;
            for (int i = g * m.GroupSize; i < (g + 1) * m.GroupSize && g < m.Groups; i++)
            {
                sum += q[i] << (int)classShifts[Int6Matrix.ClassOf(i)];
            }

            sums[g] = sum;
        }
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
        GroupScaleLanes.Avx512Controls(m.GroupSize, out Vector512<byte> lowScale, out Vector512<byte> highScale);
        Vector512<ushort> lowShift = LowShift, highShift = HighShift;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            byte* scales = tile + R * sizeof(float);
            byte* block = tile + m.HeaderBytes;
            Vector512<int> low0 = default, low1 = default, low2 = default, low3 = default;
            Vector512<int> high0 = default, high1 = default, high2 = default, high3 = default;
            for (int b = 0; b < blocks; b++)
            {
                Prefetch(block + PrefetchAhead);
                Vector512<sbyte> x0 = Vector512.Load(q + b * Int6Matrix.BlockCols);
                Vector512<sbyte> x1 = Vector512.Load(q + b * Int6Matrix.BlockCols + 64);
                byte* s = scales + b * groupsPerBlock;
                Row512(block, block + TopPlane, s, x0, x1, lowScale, highScale, lowShift, highShift, ref low0, ref high0);
                Row512(block + 64, block + TopPlane + 32, s + m.ScaleStride, x0, x1, lowScale, highScale, lowShift, highShift, ref low1, ref high1);
                Row512(block + 128, block + TopPlane + 64, s + 2 * m.ScaleStride, x0, x1, lowScale, highScale, lowShift, highShift, ref low2, ref high2);
                Row512(block + 192, block + TopPlane + 96, s + 3 * m.ScaleStride, x0, x1, lowScale, highScale, lowShift, highShift, ref low3, ref high3);
                block += R * Int6Matrix.BlockBytes;
            }

            Finish(m, t, 0, Lanes(low0, high0, input, m), scales, input, y);
            Finish(m, t, 1, Lanes(low1, high1, input, m), scales + m.ScaleStride, input, y);
            Finish(m, t, 2, Lanes(low2, high2, input, m), scales + 2 * m.ScaleStride, input, y);
            Finish(m, t, 3, Lanes(low3, high3, input, m), scales + 3 * m.ScaleStride, input, y);
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

    /// <summary><see cref="RunBatch"/> for <see cref="BatchTokens"/> tokens: two rows at a time (<see cref="RowPairBatch"/>).</summary>
    public static void RunBatchAvx512(Int6Matrix m, byte* inputs, float** y, int tileStart, int tileEnd)
    {
        long stride = InputBytes(m);
        float* steps = stackalloc float[BatchTokens];
        for (int k = 0; k < BatchTokens; k++)
        {
            steps[k] = Step(m, inputs + k * stride);
        }

        var vnni512 = UseVnni512 ? Vnni512Kernels.Int6HeadRowPair : null;
        Vector512<int>* lanes = stackalloc Vector512<int>[2 * BatchTokens];
        Int6PairCall call = default;
        call.ScaleStride = m.ScaleStride;
        call.Inputs = Unsigned(m, inputs);
        call.InputStride = stride;
        call.Blocks = m.PaddedCols / Int6Matrix.BlockCols;
        call.GroupsPerBlock = Int6Matrix.BlockCols / m.GroupSize;
        call.Lanes = (int*)lanes;
        call.Constants = m.GroupSize == 32 ? PairConstants32 : PairConstants64;
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            for (int i = 0; i < R && t * R + i < m.Rows; i += 2)
            {
                // Pair i's pass fetches lines 3i .. 3i + 2 of every block of the next tile, so the tile's 2 passes
                // fetch all 6 and spread the requests over the tile's time.
                var first = new BatchRow(tile + m.HeaderBytes, i, tile + R * sizeof(float) + i * m.ScaleStride,
                    ((float*)tile)[i], t * R + i, PrefetchAhead + 96 * i);
                var second = new BatchRow(tile + m.HeaderBytes, i + 1, tile + R * sizeof(float) + (i + 1) * m.ScaleStride,
                    ((float*)tile)[i + 1], t * R + i + 1, PrefetchAhead + 96 * i);
                if (vnni512 != null)
                {
                    call.Nibbles = first.TileBlocks + i * Int6Matrix.NibbleBytes;
                    call.Top = first.TileBlocks + TopPlane + i * Int6Matrix.TopBytes;
                    call.Scales = first.GroupScales;
                    vnni512(&call);
                }
                else
                {
                    RowPairBatch(m, first, second, inputs, stride, lanes);
                }

                FinishRow(m, first, inputs, stride, steps, y, lanes);
                if (second.Row < m.Rows)
                {
                    FinishRow(m, second, inputs, stride, steps, y, lanes + BatchTokens);
                }
            }
        }
    }

    /// <summary>One row of a tile for <see cref="RowPairBatch"/>: its blocks, scales, index and where to prefetch.</summary>
    private readonly struct BatchRow(byte* tileBlocks, int index, byte* groupScales, float scale, int row, int prefetch)
    {
        public byte* TileBlocks { get; } = tileBlocks;

        public int Index { get; } = index;

        public byte* GroupScales { get; } = groupScales;

        public float Scale { get; } = scale;

        public int Row { get; } = row;

        public int Prefetch { get; } = prefetch;
    }

    /// <summary>
    /// Two rows' logits (rows <paramref name="first"/> and <paramref name="second"/> of one tile) for each of the
    /// <see cref="BatchTokens"/> tokens: signed codes (q = code - 32) against the tokens' unsigned inputs (x + 128), per
    /// block the even 16-column runs and the odd ones (<see cref="Int6Matrix.PairedColumn"/>) multiplied apart and
    /// their pair sums added (at most 2 x 2 x 32 x 255, no overflow), then one vpmaddwd by the group scales. Then each
    /// class's lane less its input correction (what the + 128 added), shifted by its k and reduced for all tokens
    /// together (<see cref="FinishRow"/>). Signed codes move the correction from the tokens (a group-sum product per
    /// token and row) to the rows, where it is computed once, when the head is built.
    /// <para>
    /// The vector instructions, not the multiplies alone, set the pace (about 3.5 a cycle on Zen 5): pairing the runs
    /// saves a vpmaddwd and a vpaddd per token and block, and two rows share each token's input loads. One thread,
    /// 4096 rows x 2560 in cache: 17.6-17.9 -> 15.2 ms per 128256 rows.
    /// </para>
    /// A method of its own, loop-invariant vectors read into locals first, so that the JIT keeps the 16 accumulators,
    /// the codes and the scales in registers (inside the tile and row loops it kept the accumulators on the stack and
    /// tested the static fields' class initialisation every block, at a third of the speed).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void RowPairBatch(Int6Matrix m, BatchRow first, BatchRow second, byte* inputs, long stride, Vector512<int>* lanes)
    {
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        int groupsPerBlock = Int6Matrix.BlockCols / m.GroupSize;
        Vector512<byte> scaleControl = GroupScaleLanes.Avx512PairedControl(m.GroupSize);
        Vector512<ushort> lowShift = LowShift, highShift = HighShift;
        Vector512<byte> offset = Vector512.Create((byte)Int6Matrix.Offset);
        byte* block = first.TileBlocks;
        byte* scales = first.GroupScales;
        long scaleStride = m.ScaleStride;
        int i = first.Index;
        byte* x = Unsigned(m, inputs);
        Vector512<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<int> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        for (int b = 0; b < blocks; b++)
        {
            Sse.Prefetch0(block + first.Prefetch);
            Sse.Prefetch0(block + first.Prefetch + 64);
            Sse.Prefetch0(block + first.Prefetch + 128);
            // Spelled out for both rows: a helper with out parameters made the JIT keep the accumulators on the stack.
            Codes(block + i * Int6Matrix.NibbleBytes, block + TopPlane + i * Int6Matrix.TopBytes, lowShift, highShift, out Vector512<byte> low, out Vector512<byte> high);
            Vector512<sbyte> even = Paired(low, high, Int6Matrix.EvenRuns, offset), odd = Paired(low, high, Int6Matrix.OddRuns, offset);
            Codes(block + (i + 1) * Int6Matrix.NibbleBytes, block + TopPlane + (i + 1) * Int6Matrix.TopBytes, lowShift, highShift, out Vector512<byte> low2, out Vector512<byte> high2);
            Vector512<sbyte> even2 = Paired(low2, high2, Int6Matrix.EvenRuns, offset), odd2 = Paired(low2, high2, Int6Matrix.OddRuns, offset);
            Vector512<short> s = GroupScaleLanes.Avx512PairedScales(scales, scaleControl);
            Vector512<short> s2 = GroupScaleLanes.Avx512PairedScales(scales + scaleStride, scaleControl);
            TokenPair(even, odd, even2, odd2, x, s, s2, ref a0, ref b0);
            TokenPair(even, odd, even2, odd2, x + stride, s, s2, ref a1, ref b1);
            TokenPair(even, odd, even2, odd2, x + 2 * stride, s, s2, ref a2, ref b2);
            TokenPair(even, odd, even2, odd2, x + 3 * stride, s, s2, ref a3, ref b3);
            TokenPair(even, odd, even2, odd2, x + 4 * stride, s, s2, ref a4, ref b4);
            TokenPair(even, odd, even2, odd2, x + 5 * stride, s, s2, ref a5, ref b5);
            TokenPair(even, odd, even2, odd2, x + 6 * stride, s, s2, ref a6, ref b6);
            TokenPair(even, odd, even2, odd2, x + 7 * stride, s, s2, ref a7, ref b7);
            block += R * Int6Matrix.BlockBytes;
            scales += groupsPerBlock;
            x += Int6Matrix.BlockCols;
        }

        lanes[0] = a0;
        lanes[1] = a1;
        lanes[2] = a2;
        lanes[3] = a3;
        lanes[4] = a4;
        lanes[5] = a5;
        lanes[6] = a6;
        lanes[7] = a7;
        lanes[8] = b0;
        lanes[9] = b1;
        lanes[10] = b2;
        lanes[11] = b3;
        lanes[12] = b4;
        lanes[13] = b5;
        lanes[14] = b6;
        lanes[15] = b7;
    }

    /// <summary>One half of a block's signed codes (q) in the paired order (<see cref="Int6Matrix.PairedRuns"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Paired(Vector512<byte> low, Vector512<byte> high, [ConstantExpected] byte runs, Vector512<byte> offset) =>
        (Int6Matrix.PairedRuns(low, high, runs) - offset).AsSByte();

    /// <summary>Both rows' block against one token's paired unsigned input x (128 bytes): 16 class lanes each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TokenPair(Vector512<sbyte> even, Vector512<sbyte> odd, Vector512<sbyte> even2, Vector512<sbyte> odd2, byte* x,
        Vector512<short> s, Vector512<short> s2, ref Vector512<int> a, ref Vector512<int> b)
    {
        Vector512<byte> xe = Vector512.Load(x), xo = Vector512.Load(x + 64);
        a += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(xe, even) + Avx512BW.MultiplyAddAdjacent(xo, odd), s);
        b += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(xe, even2) + Avx512BW.MultiplyAddAdjacent(xo, odd2), s2);
    }

    /// <summary>
    /// A token's 16 exact class lanes, each shifted left by its class's k, as 8 int64 partial sums: in int32 up to
    /// <see cref="NarrowShiftCols"/> columns, widened first beyond.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<long> ClassDot(Int6Matrix m, Vector512<int> lanes, byte* input)
    {
        Vector512<uint> k = Vector512.Load(NarrowShifts(m, input));
        if (m.PaddedCols > NarrowShiftCols)
        {
            return Avx512F.ShiftLeftLogicalVariable(Vector512.WidenLower(lanes), Vector512.WidenLower(k).AsUInt64())
                + Avx512F.ShiftLeftLogicalVariable(Vector512.WidenUpper(lanes), Vector512.WidenUpper(k).AsUInt64());
        }

        Vector512<int> shifted = Avx512F.ShiftLeftLogicalVariable(lanes, k);
        return Vector512.WidenLower(shifted) + Vector512.WidenUpper(shifted);
    }

    /// <summary>A token's 32 one-token lanes (low: lanes 0..15, high: 16..31), each shifted left by its k, as 8 int64 partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<long> ClassSum(Vector512<int> low, Vector512<int> high, ulong* k) =>
        (Avx512F.ShiftLeftLogicalVariable(Avx512F.ConvertToVector512Int64(low.GetLower()), Vector512.Load(k))
            + Avx512F.ShiftLeftLogicalVariable(Avx512F.ConvertToVector512Int64(low.GetUpper()), Vector512.Load(k + 8)))
        + (Avx512F.ShiftLeftLogicalVariable(Avx512F.ConvertToVector512Int64(high.GetLower()), Vector512.Load(k + 16))
            + Avx512F.ShiftLeftLogicalVariable(Avx512F.ConvertToVector512Int64(high.GetUpper()), Vector512.Load(k + 24)));

    /// <summary>
    /// The row's 8 logits from its 8 tokens' class lanes at <paramref name="lanes"/>: less the row's input corrections,
    /// shifted by their classes' k and reduced together (<see cref="Transpose8"/>), times the row's scale and each
    /// token's step.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FinishRow(Int6Matrix m, BatchRow row, byte* inputs, long stride, float* steps, float** y, Vector512<int>* lanes)
    {
        Vector512<int> c = Vector512.Load(m.InputCorrections(row.Row));
        Vector512<long> dots = Transpose8(
            ClassDot(m, lanes[0] - c, inputs), ClassDot(m, lanes[1] - c, inputs + stride),
            ClassDot(m, lanes[2] - c, inputs + 2 * stride), ClassDot(m, lanes[3] - c, inputs + 3 * stride),
            ClassDot(m, lanes[4] - c, inputs + 4 * stride), ClassDot(m, lanes[5] - c, inputs + 5 * stride),
            ClassDot(m, lanes[6] - c, inputs + 6 * stride), ClassDot(m, lanes[7] - c, inputs + 7 * stride));
        Vector256<float> logits = Avx512DQ.ConvertToVector256Single(dots) * (Vector256.Load(steps) * row.Scale);
        for (int k = 0; k < BatchTokens; k++)
        {
            y[k][row.Row] = logits.GetElement(k);
        }
    }

    /// <summary>
    /// Lane k of the result = the sum of the 8 lanes of a_k: pairs of lanes first (unpack), then 128-bit lanes
    /// (vshufi64x2), 21 instructions where 8 separate sums take 56.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<long> Transpose8(Vector512<long> a0, Vector512<long> a1, Vector512<long> a2, Vector512<long> a3,
        Vector512<long> a4, Vector512<long> a5, Vector512<long> a6, Vector512<long> a7)
    {
        // Each 128-bit lane c of u01 holds [a0's lanes 2c + 2c+1, a1's lanes 2c + 2c+1].
        Vector512<long> u01 = Avx512F.UnpackLow(a0, a1) + Avx512F.UnpackHigh(a0, a1);
        Vector512<long> u23 = Avx512F.UnpackLow(a2, a3) + Avx512F.UnpackHigh(a2, a3);
        Vector512<long> u45 = Avx512F.UnpackLow(a4, a5) + Avx512F.UnpackHigh(a4, a5);
        Vector512<long> u67 = Avx512F.UnpackLow(a6, a7) + Avx512F.UnpackHigh(a6, a7);

        // 128-bit lanes [u01 (c0 + c1), u01 (c2 + c3), u23 (c0 + c1), u23 (c2 + c3)].
        Vector512<long> v0123 = Avx512F.Shuffle4x128(u01, u23, 0b10_00_10_00) + Avx512F.Shuffle4x128(u01, u23, 0b11_01_11_01);
        Vector512<long> v4567 = Avx512F.Shuffle4x128(u45, u67, 0b10_00_10_00) + Avx512F.Shuffle4x128(u45, u67, 0b11_01_11_01);
        return Avx512F.Shuffle4x128(v0123, v4567, 0b10_00_10_00) + Avx512F.Shuffle4x128(v0123, v4567, 0b11_01_11_01);
    }

    /// <summary>One row's block (128 columns) against x: the low and high halves' 16 int32 lanes each, group scales applied.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row512(byte* nibbles, byte* top, byte* scales, Vector512<sbyte> x0, Vector512<sbyte> x1, Vector512<byte> lowScale,
        Vector512<byte> highScale, Vector512<ushort> lowShift, Vector512<ushort> highShift, ref Vector512<int> low, ref Vector512<int> high)
    {
        Codes(nibbles, top, lowShift, highShift, out Vector512<byte> lowCodes, out Vector512<byte> highCodes);
        GroupScaleLanes.Avx512Scales(scales, lowScale, highScale, out Vector512<short> sLow, out Vector512<short> sHigh);
        low += Half(lowCodes, x0, sLow);
        high += Half(highCodes, x1, sHigh);
    }

    /// <summary>64 codes against 64 inputs, pair sums times their group scales: 16 int32 lanes of 4 columns each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Half(Vector512<byte> codes, Vector512<sbyte> x, Vector512<short> scales) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(codes, x), scales);

    /// <summary>The row's sum: lane j of the low (high) accumulator holds one-token lane j (16 + j), shifted left by its k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Lanes(Vector512<int> low, Vector512<int> high, byte* input, Int6Matrix m) =>
        Vector512.Sum(ClassSum(low, high, Shifts(m, input)));

    /// <summary>A row's 128 codes (0..63) of one block: columns 0..63 in <paramref name="low"/>, 64..127 in <paramref name="high"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Codes(byte* nibbles, byte* top, Vector512<ushort> lowShift, Vector512<ushort> highShift, out Vector512<byte> low, out Vector512<byte> high)
    {
        Vector512<byte> nibble = Vector512.Create((byte)0x0F), field = Vector512.Create((byte)0x30);
        Vector512<byte> packed = Vector512.Load(nibbles);
        // The 2-bit plane in both halves by a register shuffle: Vector512.Create(plane, plane) went through the stack,
        // and the load-and-broadcast Avx512F.BroadcastVector256ToVector512 reads the wrong address on .NET 10.0.401
        // when the pointer has a constant offset (its EVEX displacement is scaled by 16, not 32: p + 0x120 reads p + 0x240).
        Vector512<ulong> plane = Vector256.Load((ulong*)top).ToVector512Unsafe();
        Vector512<ushort> both = Avx512F.Shuffle4x128(plane, plane, 0b01_00_01_00).AsUInt16();
        low = Vector512.ConditionalSelect(nibble, packed, Avx512BW.ShiftLeftLogicalVariable(both, lowShift).AsByte() & field);
        high = Vector512.ConditionalSelect(nibble, (packed.AsUInt16() >> 4).AsByte(), Avx512BW.ShiftRightLogicalVariable(both, highShift).AsByte() & field);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunAvx2(Int6Matrix m, byte* input, float* y, int tileStart, int tileEnd)
    {
        int blocks = m.PaddedCols / Int6Matrix.BlockCols;
        int groupsPerBlock = Int6Matrix.BlockCols / m.GroupSize;
        sbyte* q = (sbyte*)input;
        ulong* k = Shifts(m, input);
        Vector256<byte> nibble = Vector256.Create((byte)0x0F), field = Vector256.Create((byte)0x30);

        // The four quarters of a block (columns 0, 32, 64, 96) keep their own accumulator, whose lane j holds
        // one-token lane 8 * quarter + j.
        GroupScaleLanes.Avx2Controls(m.GroupSize, out Vector256<byte> scale0, out Vector256<byte> scale1, out Vector256<byte> scale2, out Vector256<byte> scale3);
        for (int t = tileStart; t < tileEnd; t++)
        {
            byte* tile = m.Tile(t);
            byte* scales = tile + R * sizeof(float);
            for (int i = 0; i < R; i++)
            {
                byte* block = tile + m.HeaderBytes;
                byte* rowScales = scales + i * m.ScaleStride;
                Vector256<int> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
                for (int b = 0; b < blocks; b++)
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
                    Vector256<byte> s = Vector256.Create(Unsafe.ReadUnaligned<uint>(rowScales + b * groupsPerBlock)).AsByte();
                    acc0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c0, Vector256.Load(x)), GroupScaleLanes.Avx2Scale(s, scale0));
                    acc1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c1, Vector256.Load(x + 32)), GroupScaleLanes.Avx2Scale(s, scale1));
                    acc2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c2, Vector256.Load(x + 64)), GroupScaleLanes.Avx2Scale(s, scale2));
                    acc3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(c3, Vector256.Load(x + 96)), GroupScaleLanes.Avx2Scale(s, scale3));
                    block += R * Int6Matrix.BlockBytes;
                }

                long sum = Lanes(acc0, k) + Lanes(acc1, k + 8) + Lanes(acc2, k + 16) + Lanes(acc3, k + 24);
                Finish(m, t, i, sum, rowScales, input, y);
            }
        }
    }

    /// <summary>8 int32 one-token lanes (shifts k[0..7]), each shifted left by its k, summed in int64.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Lanes(Vector256<int> acc, ulong* k) =>
        Vector256.Sum(Avx2.ShiftLeftLogicalVariable(Avx2.ConvertToVector256Int64(acc.GetLower()), Vector256.Load(k))
            + Avx2.ShiftLeftLogicalVariable(Avx2.ConvertToVector256Int64(acc.GetUpper()), Vector256.Load(k + 4)));

    /// <summary>Plain loops over the signed codes q = code - 32: each product times its group scale and its class's 2^k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunScalar(Int6Matrix m, byte* input, float* y, int tileStart, int tileEnd)
    {
        const int Quarter = Int6Matrix.TopBytes;
        sbyte* q = (sbyte*)input;
        ulong* k = Shifts(m, input);
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
                        for (int j = 0; j < Quarter; j++)
                        {
                            int col = quarter * Quarter + j;
                            byte packed = nibbles[col % Int6Matrix.NibbleBytes];
                            int low = quarter < 2 ? packed & 0xF : packed >> 4;
                            int code = low | ((top[j] >> (2 * quarter)) & 3) << 4;
                            long product = (long)(code - Int6Matrix.Offset) * q[b * Int6Matrix.BlockCols + col] * scales[(b * Int6Matrix.BlockCols + col) / m.GroupSize];
                            dot += product << (int)k[col / 4];
                        }
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

        // sum_g scale_g * (sum over the group of q * 2^k): at most 127 * 65024 per group, 64 groups per lane at 16384 columns.
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

    /// <summary>The read-only vectors of <see cref="Int6PairCall.Constants"/> for a group size, allocated once.</summary>
    private static byte* PairConstants(int groupSize)
    {
        byte* c = (byte*)NativeMemory.AlignedAlloc(6 * 64, 64);
        LowShift.AsByte().Store(c);
        HighShift.AsByte().Store(c + 64);
        Vector512.Create((byte)0x0F).Store(c + 128);
        Vector512.Create((byte)0x30).Store(c + 192);
        Vector512.Create((byte)Int6Matrix.Offset).Store(c + 256);
        GroupScaleLanes.Avx512PairedControl(groupSize).Store(c + 320);
        return c;
    }

    /// <summary>Word shift counts: <paramref name="lower"/> for the low 256 bits, <paramref name="upper"/> for the high.</summary>
    private static Vector512<ushort> HalfShifts(ushort lower, ushort upper) =>
        Vector512.Create(Vector256.Create(lower), Vector256.Create(upper));
}
