using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Halo.Engine.Weights;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// The row-scaled ternary matmul: when every row has one scale (<see cref="TernaryMatrix.RowScales"/>) and every
/// token one activation scale, a row's dot product is one integer sum, scaled once at the end, instead of a float
/// multiply-add per 256-block. For batches each weight block is decoded once for <see cref="TokenGroup"/> tokens
/// (a register-blocked GEMM); one token reads the 4 rows of a tile per block (the decode GEMV). AVX-512BW keeps
/// 16-bit partial sums; AVX2 uses AVX-VNNI where present.
/// </summary>
public static unsafe partial class TernaryMatMul
{
    /// <summary>Tokens that share one decoded weight block in the row-scaled GEMM.</summary>
    public const int TokenGroup = 4;

    // The fewest tokens that take an 8-token pass where the VNNI kernels run (padded to 8).
    private const int PaddedGroup = 6;

    // A block adds at most 4 fields x 2 pairs x 2 x 128 = 2048 to a 16-bit lane (codes <= 2, |q| <= 128), so
    // 15 blocks stay below 32767 before the lanes are widened to 32 bits.
    private const int BlocksPerFlush = 15;

    /// <summary>GFNI unpacks a 2-bit field in one instruction instead of a shift and a mask (tests turn it off).</summary>
    public static bool UseGfni { get; set; } = Gfni.V512.IsSupported;

    /// <summary>AVX-VNNI multiplies and accumulates into 32 bits in one instruction (tests turn it off).</summary>
    public static bool UseAvxVnni { get; set; } = AvxVnni.IsSupported;

    /// <summary>The GEMM's micro-kernel is <see cref="Vnni512Kernels"/>'s where they can be used (tests turn it off).</summary>
    public static bool UseVnni512 { get; set; } = Vnni512Kernels.Usable;

    // Tiles per call of a GEMM tiles kernel: their dots (16 ints each per 4 tokens) wait on the stack to be scaled.
    private const int TilesPerCall = 16;

    // Groups of 8 tokens take one pass per range of at most this many columns where the VNNI kernels run: a range's
    // activations (8 x 4096 bytes at most) then stay in L1 beside the weights. At 6912 columns (55 KB) they did not:
    // one 8-token pass took the 2B model's down projection 9.6 ms of an 8-stream step, two 4-token passes 5.7-6.1, two
    // column ranges 5.3-5.5 (each range prefetching its own columns of the next tile).
    private const int EightTokenCols = 4096;

    /// <summary>y[t, r] = (sum_k code[r, k] q[t, k] - sum_k q[t, k]) d[t] s[r] s, with AVX-512BW (and VNNI where present).</summary>
    internal static void RunRowScaledAvx512(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd) =>
        RunRowScaled(w, x, y, yStride, tileStart, tileEnd, UseVnni512 ? &FourTokenTilesVnni512 : &FourTokenTilesAvx512, &OneTokenFourRows, UseVnni512);

    /// <summary>The same with AVX2 (and AVX-VNNI where present).</summary>
    internal static void RunRowScaledAvx2(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd) =>
        RunRowScaled(w, x, y, yStride, tileStart, tileEnd, &FourTokenTilesAvx2, &OneTokenFourRowsAvx2, eightTokens: false);

    // fourTokenTiles computes dots [tile][row i][token g] (16 per tile) of up to TilesPerCall consecutive tiles for a
    // group of 4 tokens; called once per TilesPerCall tiles, so the indirect call costs nothing. eightTokens: groups of
    // 8 tokens go to Vnni512Kernels.TernaryEightTokenTiles first, where it applies.
    // No zeroing of the two 2 KiB dot buffers on entry (the kernels write every dot before it is read): a decode step
    // enters once per 16-tile item, ~10.7k times. 12 interleaved runs each: one stream 15.66 -> 15.05 ms a step,
    // 8 streams 30.07 -> 29.78.
    [SkipLocalsInit]
    private static void RunRowScaled(TernaryMatrix w, QuantizedActivations x, float* y, int yStride, int tileStart, int tileEnd,
        delegate*<byte*, int, int, sbyte*, int, int*, void> fourTokenTiles, delegate*<byte*, int, sbyte*, int*, void> oneTokenFourRows, bool eightTokens)
    {
        int blocks = w.Blocks, cols = w.Cols;
        const int EightTokenDots = TilesPerCall * TernaryMatrix.TileRows * 2 * TokenGroup;
        int* dots = stackalloc int[EightTokenDots];
        int* rangeDots = stackalloc int[EightTokenDots];
        int t = 0;
        var eightTokenTiles = eightTokens ? Vnni512Kernels.TernaryEightTokenTiles : null;
        int ranges = (cols + EightTokenCols - 1) / EightTokenCols;
        long tileBytes = (long)blocks * TernaryMatrix.TileBlockBytes;
        long prefetch = ranges == 1 ? Vnni512Kernels.TernaryPrefetchDistance : tileBytes;
        // Groups of 8 tokens, and a last group of 6 or 7 padded to 8 with whatever the activation buffer holds past the
        // batch (their dots are dropped), where the buffer has the rows: one 8-token pass costs less than a 4-token pass
        // and 2 or 3 one-token passes. 2B steps, 4 runs' best: 7 streams 37.6 -> 32.2 ms, 6 streams 32.7 -> 31.1 (8:
        // 30.9); 5 streams took 29.0 unpadded and 30.9 padded, so a group of 5 is not padded.
        for (; eightTokenTiles != null && x.Tokens - t >= PaddedGroup && t + 2 * TokenGroup <= x.MaxTokens; t += 2 * TokenGroup)
        {
            sbyte* q = x.Q + (long)t * cols;
            int count = Math.Min(2 * TokenGroup, x.Tokens - t);
            var first = new TileScaling(w, x, t);
            var second = new TileScaling(w, x, t + TokenGroup);
            for (int start = tileStart; start < tileEnd; start += TilesPerCall)
            {
                int tiles = Math.Min(TilesPerCall, tileEnd - start);
                for (int r = 0; r < ranges; r++)
                {
                    // Blocks [b0, b1) of every row of the tiles.
                    int b0 = blocks * r / ranges, b1 = blocks * (r + 1) / ranges;
                    eightTokenTiles(TileCodes(w, start) + (long)b0 * TernaryMatrix.TileBlockBytes, tiles, b1 - b0, q + b0 * TernaryMatrix.BlockSize, cols,
                        r == 0 ? dots : rangeDots, tileBytes, prefetch);
                    if (r > 0)
                    {
                        AddDots(dots, rangeDots, tiles * TernaryMatrix.TileRows * 2 * TokenGroup);
                    }
                }

                // The whole tiles of 8 real tokens in one call; a ragged last tile and a padded group's tiles one by one.
                int whole = count == 2 * TokenGroup ? Math.Clamp(w.Rows / TernaryMatrix.TileRows - start, 0, tiles) : 0;
                if (whole > 0)
                {
                    int row = start * TernaryMatrix.TileRows;
                    StoreEightTokenTiles(dots, whole, w.RowScales + row, y + (long)t * yStride + row, yStride, first, second);
                }

                for (int i = whole; i < tiles; i++)
                {
                    int* tileDots = dots + i * TernaryMatrix.TileRows * 2 * TokenGroup;
                    StoreTile(w, x, first, t, start + i, tileDots, y, yStride, TokenGroup);
                    StoreTile(w, x, second, t + TokenGroup, start + i, tileDots + TernaryMatrix.TileRows * TokenGroup, y, yStride, count - TokenGroup);
                }
            }
        }

        // Groups of 4, and a last group of 3 padded to 4 as above: 3 one-token passes took a 2B step's matmuls 2 ms
        // longer than one 4-token pass (2 took less).
        for (; x.Tokens - t >= TokenGroup - 1 && t + TokenGroup <= x.MaxTokens; t += TokenGroup)
        {
            // The group's activations (4 x cols bytes) stay in L1 while the thread's tiles stream past them.
            sbyte* q = x.Q + (long)t * cols;
            int count = Math.Min(TokenGroup, x.Tokens - t);
            var group = new TileScaling(w, x, t);
            for (int first = tileStart; first < tileEnd; first += TilesPerCall)
            {
                int tiles = Math.Min(TilesPerCall, tileEnd - first);
                fourTokenTiles(TileCodes(w, first), tiles, blocks, q, cols, dots);
                for (int i = 0; i < tiles; i++)
                {
                    StoreTile(w, x, group, t, first + i, dots + i * TernaryMatrix.TileRows * TokenGroup, y, yStride, count);
                }
            }
        }

        for (; t < x.Tokens; t++)
        {
            sbyte* q = x.Q + (long)t * cols;
            for (int tile = tileStart; tile < tileEnd; tile++)
            {
                oneTokenFourRows(TileCodes(w, tile), blocks, q, dots);
                StoreRowScaled(w, x, t, y + (long)t * yStride, tile, dots, 1);
            }
        }
    }

    /// <summary>
    /// Tokens t..t + count - 1's outputs of one tile from its dots [row][token of 4] (a ragged last tile, or a padded
    /// group's real tokens, row by row).
    /// </summary>
    private static void StoreTile(TernaryMatrix w, QuantizedActivations x, in TileScaling group, int t, int tile, int* dots, float* y, int yStride, int count)
    {
        if (Avx512F.IsSupported && count == TokenGroup && (tile + 1) * TernaryMatrix.TileRows <= w.Rows)
        {
            group.Store(w, tile, dots, y + (long)t * yStride, yStride);
            return;
        }

        for (int g = 0; g < count; g++)
        {
            StoreRowScaled(w, x, t + g, y + (long)(t + g) * yStride, tile, dots + g, TokenGroup);
        }
    }

    private static byte* TileCodes(TernaryMatrix w, int tile) => w.Codes + (long)tile * w.Blocks * TernaryMatrix.TileBlockBytes;

    /// <summary>dots[i] += more[i] for i in [0, n), n a multiple of 16.</summary>
    private static void AddDots(int* dots, int* more, int n)
    {
        for (int i = 0; i < n; i += Vector512<int>.Count)
        {
            (Vector512.Load(dots + i) + Vector512.Load(more + i)).Store(dots + i);
        }
    }

    /// <summary>The GEMM's tiles with <see cref="Vnni512Kernels.TernaryFourTokenTiles"/> (AVX-512BW's if it could not be mapped).</summary>
    private static void FourTokenTilesVnni512(byte* tileCodes, int tiles, int blocks, sbyte* q, int cols, int* dots)
    {
        var kernel = Vnni512Kernels.TernaryFourTokenTiles;
        if (kernel == null)
        {
            FourTokenTilesAvx512(tileCodes, tiles, blocks, q, cols, dots);
            return;
        }

        kernel(tileCodes, tiles, blocks, q, cols, dots, (long)blocks * TernaryMatrix.TileBlockBytes, Vnni512Kernels.TernaryPrefetchDistance);
    }

    /// <summary>The GEMM's tiles with AVX-512BW: two rows per call of <see cref="FourTokensTwoRows"/>.</summary>
    private static void FourTokenTilesAvx512(byte* tileCodes, int tiles, int blocks, sbyte* q, int cols, int* dots)
    {
        for (int i = 0; i < tiles; i++)
        {
            byte* codes = tileCodes + (long)i * blocks * TernaryMatrix.TileBlockBytes;
            int* tileDots = dots + i * TernaryMatrix.TileRows * TokenGroup;
            FourTokensTwoRows(codes, blocks, q, cols, tileDots);
            FourTokensTwoRows(codes + 2 * TernaryMatrix.BlockBytes, blocks, q, cols, tileDots + 2 * TokenGroup);
        }
    }

    /// <summary>The GEMM's tiles with AVX2: one row per call of <see cref="FourTokensOneRowAvx2"/>.</summary>
    private static void FourTokenTilesAvx2(byte* tileCodes, int tiles, int blocks, sbyte* q, int cols, int* dots)
    {
        for (int i = 0; i < tiles; i++)
        {
            byte* codes = tileCodes + (long)i * blocks * TernaryMatrix.TileBlockBytes;
            for (int r = 0; r < TernaryMatrix.TileRows; r++)
            {
                FourTokensOneRowAvx2(codes + r * TernaryMatrix.BlockBytes, blocks, q, cols, dots + (i * TernaryMatrix.TileRows + r) * TokenGroup);
            }
        }
    }

    /// <summary>
    /// dots[4 r + g] = sum_k code[r, k] q[g, k] for two adjacent rows r of a tile (their blocks 256 bytes apart) and
    /// 4 tokens: each activation vector is loaded once for both rows, where one row per call loaded it per row and
    /// the loads, not the multiplies, set the pace.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourTokensTwoRows(byte* rowCodes, int blocks, sbyte* q, int cols, int* dots)
    {
        Vector512<short> ones = Vector512.Create((short)1);
        Vector512<int> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
        for (int b0 = 0; b0 < blocks; b0 += BlocksPerFlush)
        {
            int end = Math.Min(blocks, b0 + BlocksPerFlush);
            Vector512<short> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
            for (int b = b0; b < end; b++)
            {
                // The first token group streams the weights from memory; a row's blocks are 256 bytes apart,
                // a stride the hardware prefetcher follows late (+35% on a 128 MB matrix, -1% in cache).
                byte* codes = rowCodes + (long)b * TernaryMatrix.TileBlockBytes;
                Sse.Prefetch0(codes + PrefetchDistance);
                Sse.Prefetch0(codes + PrefetchDistance + TernaryMatrix.BlockBytes);
                Unpack(Vector512.Load(codes), out Vector512<byte> f0, out Vector512<byte> f1, out Vector512<byte> f2, out Vector512<byte> f3);
                Unpack(Vector512.Load(codes + TernaryMatrix.BlockBytes), out Vector512<byte> h0, out Vector512<byte> h1, out Vector512<byte> h2, out Vector512<byte> h3);
                sbyte* qb = q + b * 256;
                TwoRowsOneToken(f0, f1, f2, f3, h0, h1, h2, h3, qb, ref a00, ref a10);
                TwoRowsOneToken(f0, f1, f2, f3, h0, h1, h2, h3, qb + cols, ref a01, ref a11);
                TwoRowsOneToken(f0, f1, f2, f3, h0, h1, h2, h3, qb + 2 * cols, ref a02, ref a12);
                TwoRowsOneToken(f0, f1, f2, f3, h0, h1, h2, h3, qb + 3 * cols, ref a03, ref a13);
            }

            s00 += Avx512BW.MultiplyAddAdjacent(a00, ones);
            s01 += Avx512BW.MultiplyAddAdjacent(a01, ones);
            s02 += Avx512BW.MultiplyAddAdjacent(a02, ones);
            s03 += Avx512BW.MultiplyAddAdjacent(a03, ones);
            s10 += Avx512BW.MultiplyAddAdjacent(a10, ones);
            s11 += Avx512BW.MultiplyAddAdjacent(a11, ones);
            s12 += Avx512BW.MultiplyAddAdjacent(a12, ones);
            s13 += Avx512BW.MultiplyAddAdjacent(a13, ones);
        }

        SumFour(s00, s01, s02, s03, dots);
        SumFour(s10, s11, s12, s13, dots + TokenGroup);
    }

    /// <summary>One token's 256-block (4 vectors at x) against the fields f of one row and h of the next.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TwoRowsOneToken(Vector512<byte> f0, Vector512<byte> f1, Vector512<byte> f2, Vector512<byte> f3,
        Vector512<byte> h0, Vector512<byte> h1, Vector512<byte> h2, Vector512<byte> h3, sbyte* x, ref Vector512<short> a, ref Vector512<short> c)
    {
        Vector512<sbyte> x0 = Vector512.Load(x), x1 = Vector512.Load(x + 64), x2 = Vector512.Load(x + 128), x3 = Vector512.Load(x + 192);
        a += FieldDot(f0, f1, f2, f3, x0, x1, x2, x3);
        c += FieldDot(h0, h1, h2, h3, x0, x1, x2, x3);
    }

    /// <summary>dots[i] = sum_k code[i, k] q[k] for the 4 rows of a tile and one token (the decode GEMV).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneTokenFourRows(byte* tileCodes, int blocks, sbyte* q, int* dots)
    {
        Vector512<short> ones = Vector512.Create((short)1);
        Vector512<int> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int b0 = 0; b0 < blocks; b0 += BlocksPerFlush)
        {
            int end = Math.Min(blocks, b0 + BlocksPerFlush);
            Vector512<short> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int b = b0; b < end; b++)
            {
                byte* codes = tileCodes + b * TernaryMatrix.TileBlockBytes;
                PrefetchTileBlock(codes);
                sbyte* qb = q + b * 256;
                Vector512<sbyte> x0 = Vector512.Load(qb), x1 = Vector512.Load(qb + 64), x2 = Vector512.Load(qb + 128), x3 = Vector512.Load(qb + 192);
                a0 += RowDot(Vector512.Load(codes), x0, x1, x2, x3);
                a1 += RowDot(Vector512.Load(codes + 64), x0, x1, x2, x3);
                a2 += RowDot(Vector512.Load(codes + 128), x0, x1, x2, x3);
                a3 += RowDot(Vector512.Load(codes + 192), x0, x1, x2, x3);
            }

            s0 += Avx512BW.MultiplyAddAdjacent(a0, ones);
            s1 += Avx512BW.MultiplyAddAdjacent(a1, ones);
            s2 += Avx512BW.MultiplyAddAdjacent(a2, ones);
            s3 += Avx512BW.MultiplyAddAdjacent(a3, ones);
        }

        SumFour(s0, s1, s2, s3, dots);
    }

    /// <summary>
    /// dots[i] = the lane sum of s_i, the four reduced together: interleaving before folding takes 13 instructions
    /// where four separate lane sums take 36.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SumFour(Vector512<int> s0, Vector512<int> s1, Vector512<int> s2, Vector512<int> s3, int* dots)
    {
        // Per 128-bit lane: u = [s0, s1, s0, s1] partials, v = [s2, s3, s2, s3], w = [s0, s1, s2, s3].
        Vector512<int> u = Avx512F.UnpackLow(s0, s1) + Avx512F.UnpackHigh(s0, s1);
        Vector512<int> v = Avx512F.UnpackLow(s2, s3) + Avx512F.UnpackHigh(s2, s3);
        Vector512<int> w = Avx512F.UnpackLow(u.AsInt64(), v.AsInt64()).AsInt32() + Avx512F.UnpackHigh(u.AsInt64(), v.AsInt64()).AsInt32();
        Vector256<int> half = w.GetLower() + w.GetUpper();
        (half.GetLower() + half.GetUpper()).Store(dots);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> FieldDot(Vector512<byte> f0, Vector512<byte> f1, Vector512<byte> f2, Vector512<byte> f3,
        Vector512<sbyte> x0, Vector512<sbyte> x1, Vector512<sbyte> x2, Vector512<sbyte> x3) =>
        (Avx512BW.MultiplyAddAdjacent(f0, x0) + Avx512BW.MultiplyAddAdjacent(f1, x1))
        + (Avx512BW.MultiplyAddAdjacent(f2, x2) + Avx512BW.MultiplyAddAdjacent(f3, x3));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> RowDot(Vector512<byte> codes, Vector512<sbyte> x0, Vector512<sbyte> x1, Vector512<sbyte> x2, Vector512<sbyte> x3)
    {
        Unpack(codes, out Vector512<byte> f0, out Vector512<byte> f1, out Vector512<byte> f2, out Vector512<byte> f3);
        return FieldDot(f0, f1, f2, f3, x0, x1, x2, x3);
    }

    /// <summary>The four 2-bit fields of 64 code bytes, each in the low bits of its byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unpack(Vector512<byte> c, out Vector512<byte> f0, out Vector512<byte> f1, out Vector512<byte> f2, out Vector512<byte> f3)
    {
        if (UseGfni)
        {
            // One affine bit-matrix per field moves bits 2l, 2l+1 to bits 0, 1 (GF(2) matrix rows: output bit i is
            // the parity of the input masked by matrix byte 7 - i).
            f0 = Gfni.V512.GaloisFieldAffineTransform(c, Vector512.Create(0x0102_0000_0000_0000UL).AsByte(), 0);
            f1 = Gfni.V512.GaloisFieldAffineTransform(c, Vector512.Create(0x0408_0000_0000_0000UL).AsByte(), 0);
            f2 = Gfni.V512.GaloisFieldAffineTransform(c, Vector512.Create(0x1020_0000_0000_0000UL).AsByte(), 0);
            f3 = Gfni.V512.GaloisFieldAffineTransform(c, Vector512.Create(0x4080_0000_0000_0000UL).AsByte(), 0);
            return;
        }

        Vector512<byte> mask = Vector512.Create((byte)3);
        Vector512<ushort> cw = c.AsUInt16();
        f0 = c & mask;
        f1 = Avx512BW.ShiftRightLogical(cw, 2).AsByte() & mask;
        f2 = Avx512BW.ShiftRightLogical(cw, 4).AsByte() & mask;
        f3 = Avx512BW.ShiftRightLogical(cw, 6).AsByte() & mask;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourTokensOneRowAvx2(byte* rowCodes, int blocks, sbyte* q, int cols, int* dots)
    {
        Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int b = 0; b < blocks; b++)
        {
            byte* codes = rowCodes + (long)b * TernaryMatrix.TileBlockBytes;
            Sse.Prefetch0(codes + PrefetchDistance);
            Unpack(Vector256.Load(codes), out Vector256<byte> f0, out Vector256<byte> f1, out Vector256<byte> f2, out Vector256<byte> f3);
            Unpack(Vector256.Load(codes + 32), out Vector256<byte> g0, out Vector256<byte> g1, out Vector256<byte> g2, out Vector256<byte> g3);
            sbyte* qb = q + b * 256;
            s0 += BlockDot(f0, f1, f2, f3, g0, g1, g2, g3, qb);
            s1 += BlockDot(f0, f1, f2, f3, g0, g1, g2, g3, qb + cols);
            s2 += BlockDot(f0, f1, f2, f3, g0, g1, g2, g3, qb + 2 * cols);
            s3 += BlockDot(f0, f1, f2, f3, g0, g1, g2, g3, qb + 3 * cols);
        }

        dots[0] = Vector256.Sum(s0);
        dots[1] = Vector256.Sum(s1);
        dots[2] = Vector256.Sum(s2);
        dots[3] = Vector256.Sum(s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneTokenFourRowsAvx2(byte* tileCodes, int blocks, sbyte* q, int* dots)
    {
        Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int b = 0; b < blocks; b++)
        {
            byte* codes = tileCodes + b * TernaryMatrix.TileBlockBytes;
            PrefetchTileBlock(codes);
            sbyte* qb = q + b * 256;
            s0 += RowDot(codes, qb);
            s1 += RowDot(codes + 64, qb);
            s2 += RowDot(codes + 128, qb);
            s3 += RowDot(codes + 192, qb);
        }

        dots[0] = Vector256.Sum(s0);
        dots[1] = Vector256.Sum(s1);
        dots[2] = Vector256.Sum(s2);
        dots[3] = Vector256.Sum(s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> RowDot(byte* codes, sbyte* qb)
    {
        Unpack(Vector256.Load(codes), out Vector256<byte> f0, out Vector256<byte> f1, out Vector256<byte> f2, out Vector256<byte> f3);
        Unpack(Vector256.Load(codes + 32), out Vector256<byte> g0, out Vector256<byte> g1, out Vector256<byte> g2, out Vector256<byte> g3);
        return BlockDot(f0, f1, f2, f3, g0, g1, g2, g3, qb);
    }

    /// <summary>
    /// sum code * q over one 256-block: f are the fields of code bytes 0..31 (activations l * 64 + 0..31),
    /// g those of bytes 32..63 (l * 64 + 32..63).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockDot(Vector256<byte> f0, Vector256<byte> f1, Vector256<byte> f2, Vector256<byte> f3,
        Vector256<byte> g0, Vector256<byte> g1, Vector256<byte> g2, Vector256<byte> g3, sbyte* qb)
    {
        if (UseAvxVnni)
        {
            // Two independent chains of 4 multiply-accumulates.
            Vector256<int> p = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, f0, Vector256.Load(qb));
            Vector256<int> r = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, g0, Vector256.Load(qb + 32));
            p = AvxVnni.MultiplyWideningAndAdd(p, f1, Vector256.Load(qb + 64));
            r = AvxVnni.MultiplyWideningAndAdd(r, g1, Vector256.Load(qb + 96));
            p = AvxVnni.MultiplyWideningAndAdd(p, f2, Vector256.Load(qb + 128));
            r = AvxVnni.MultiplyWideningAndAdd(r, g2, Vector256.Load(qb + 160));
            p = AvxVnni.MultiplyWideningAndAdd(p, f3, Vector256.Load(qb + 192));
            r = AvxVnni.MultiplyWideningAndAdd(r, g3, Vector256.Load(qb + 224));
            return p + r;
        }

        // 8 products of at most 512 each: the 16-bit sum cannot overflow.
        Vector256<short> s = (Avx2.MultiplyAddAdjacent(f0, Vector256.Load(qb)) + Avx2.MultiplyAddAdjacent(g0, Vector256.Load(qb + 32)))
            + (Avx2.MultiplyAddAdjacent(f1, Vector256.Load(qb + 64)) + Avx2.MultiplyAddAdjacent(g1, Vector256.Load(qb + 96)))
            + (Avx2.MultiplyAddAdjacent(f2, Vector256.Load(qb + 128)) + Avx2.MultiplyAddAdjacent(g2, Vector256.Load(qb + 160)))
            + (Avx2.MultiplyAddAdjacent(f3, Vector256.Load(qb + 192)) + Avx2.MultiplyAddAdjacent(g3, Vector256.Load(qb + 224)));
        return Avx2.MultiplyAddAdjacent(s, Vector256.Create((short)1));
    }

    /// <summary>The four 2-bit fields of 32 code bytes, each in the low bits of its byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unpack(Vector256<byte> c, out Vector256<byte> f0, out Vector256<byte> f1, out Vector256<byte> f2, out Vector256<byte> f3)
    {
        Vector256<byte> mask = Vector256.Create((byte)3);
        Vector256<ushort> cw = c.AsUInt16();
        f0 = c & mask;
        f1 = Avx2.ShiftRightLogical(cw, 2).AsByte() & mask;
        f2 = Avx2.ShiftRightLogical(cw, 4).AsByte() & mask;
        f3 = Avx2.ShiftRightLogical(cw, 6).AsByte() & mask;
    }

    /// <summary>
    /// <see cref="StoreRowScaled"/> for a whole tile and a group of 4 tokens in one 16-lane vector, lane 4 i + g for
    /// row i and token g as the micro-kernels leave the dots: at 2560 columns a tile's 4 x 4 scalar stores were a
    /// tenth of the GEMM's time. The token pattern (sums, scales) is built once per group.
    /// </summary>
    private readonly struct TileScaling
    {
        // [row i][token g] -> [token g][row i], so each token's 4 rows leave in one 128-bit store.
        private static readonly Vector512<int> TokenMajor = Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        private static readonly Vector512<int> RowOfLane = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);

        private readonly Vector512<int> _sums;    // lane 4 i + g: token g's sum of q
        private readonly Vector512<float> _scales; // lane 4 i + g: token g's scale d times the tensor scale

        public Vector512<int> Sums => _sums;

        public Vector512<float> Scales => _scales;

        public TileScaling(TernaryMatrix w, QuantizedActivations x, int t)
        {
            Vector128<int> sums = Vector128.Load(x.TokenSum + t);
            Vector128<float> scales = Vector128.Create(x.D[t * x.Blocks], x.D[(t + 1) * x.Blocks], x.D[(t + 2) * x.Blocks], x.D[(t + 3) * x.Blocks]) * w.TensorScale;
            _sums = Vector512.Create(Vector256.Create(sums, sums), Vector256.Create(sums, sums));
            _scales = Vector512.Create(Vector256.Create(scales, scales), Vector256.Create(scales, scales));
        }

        /// <summary>y[t + g, row + i] = (dots[4 i + g] - sum_g) * (scale_g * rowScale_i) for tile <paramref name="tile"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(TernaryMatrix w, int tile, int* dots, float* y, int yStride)
        {
            int row = tile * TernaryMatrix.TileRows;
            Vector512<float> rowScales = Avx512F.PermuteVar16x32(Vector128.Load(w.RowScales + row).ToVector256Unsafe().ToVector512Unsafe(), RowOfLane);
            Vector512<float> values = Avx512F.ConvertToVector512Single(Vector512.Load(dots) - _sums) * (_scales * rowScales);
            Vector512<float> byToken = Avx512F.PermuteVar16x32(values, TokenMajor);
            byToken.GetLower().GetLower().Store(y + row);
            byToken.GetLower().GetUpper().Store(y + yStride + row);
            byToken.GetUpper().GetLower().Store(y + 2L * yStride + row);
            byToken.GetUpper().GetUpper().Store(y + 3L * yStride + row);
        }
    }

    /// <summary>
    /// <see cref="TileScaling.Store"/> for both groups of an 8-token pass over <paramref name="tiles"/> whole tiles
    /// (dots [tile][group][row i][token g]; their rows' scales at <paramref name="rowScales"/>, outputs at
    /// <paramref name="y"/> + token * <paramref name="yStride"/>): the same arithmetic, with the constants, both groups'
    /// scalings and the 8 output rows in registers for the whole call. Called per tile from the GEMM's loop, whose
    /// stackalloc keeps it at full-opts rather than tier 1, the store re-read its constants and checked their class's
    /// initialisation every tile. 8-stream step, two interleaved comparisons: 29.4 -> 28.9 ms (12 runs each, one build
    /// switched by a flag) and 30.0 -> 29.8 (16 runs each, two builds).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StoreEightTokenTiles(int* dots, int tiles, float* rowScales, float* y, int yStride, in TileScaling first, in TileScaling second)
    {
        Vector512<int> tokenMajor = Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        Vector512<int> rowOfLane = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        Vector512<int> sums0 = first.Sums, sums1 = second.Sums;
        Vector512<float> scales0 = first.Scales, scales1 = second.Scales;
        float* y0 = y, y1 = y0 + yStride, y2 = y1 + yStride, y3 = y2 + yStride, y4 = y3 + yStride, y5 = y4 + yStride, y6 = y5 + yStride, y7 = y6 + yStride;
        for (int i = 0; i < tiles; i++)
        {
            int r = i * TernaryMatrix.TileRows;
            Vector512<float> rows = Avx512F.PermuteVar16x32(Vector128.Load(rowScales + r).ToVector256Unsafe().ToVector512Unsafe(), rowOfLane);
            int* d = dots + 2 * r * TokenGroup;
            Vector512<float> low = Avx512F.PermuteVar16x32(Avx512F.ConvertToVector512Single(Vector512.Load(d) - sums0) * (scales0 * rows), tokenMajor);
            Vector512<float> high = Avx512F.PermuteVar16x32(Avx512F.ConvertToVector512Single(Vector512.Load(d + 16) - sums1) * (scales1 * rows), tokenMajor);
            Avx512F.ExtractVector128(low, 0).Store(y0 + r);
            Avx512F.ExtractVector128(low, 1).Store(y1 + r);
            Avx512F.ExtractVector128(low, 2).Store(y2 + r);
            Avx512F.ExtractVector128(low, 3).Store(y3 + r);
            Avx512F.ExtractVector128(high, 0).Store(y4 + r);
            Avx512F.ExtractVector128(high, 1).Store(y5 + r);
            Avx512F.ExtractVector128(high, 2).Store(y6 + r);
            Avx512F.ExtractVector128(high, 3).Store(y7 + r);
        }
    }

    /// <summary>Scales the integer dots of one tile's rows for token t (dots of row i at dots[i * dotStride]).</summary>
    private static void StoreRowScaled(TernaryMatrix w, QuantizedActivations x, int t, float* yRow, int tile, int* dots, int dotStride)
    {
        // Codes are w + 1, so sum(code * q) - sum(q) = sum(w * q).
        int sum = x.TokenSum[t];
        float scale = x.D[t * x.Blocks] * w.TensorScale;
        int row = tile * TernaryMatrix.TileRows;
        float* rowScales = w.RowScales + row;
        int count = Math.Min(TernaryMatrix.TileRows, w.Rows - row);
        for (int i = 0; i < count; i++)
        {
            yRow[row + i] = (dots[i * dotStride] - sum) * (scale * rowScales[i]);
        }
    }
}
