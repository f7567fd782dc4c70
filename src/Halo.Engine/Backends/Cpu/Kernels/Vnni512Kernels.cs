using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// Micro-kernels with AVX-512 VNNI: vpdpbusd zmm multiplies 64 unsigned by 64 signed bytes and adds each 4 products
/// into an int32 lane, one instruction where vpmaddubsw + vpaddw (or + vpmaddwd) take two. .NET 10 has no intrinsic
/// for it (AvxVnni stops at 256 bits, Avx10v1 is not reported on Zen 5), so the kernels are assembled at their first
/// call with Iced into a page of their own and called through unmanaged function pointers, as oneDNN assembles its
/// kernels with Xbyak.
/// <para>
/// On Zen 5 vpdpbusd zmm issues 2 per cycle with a latency of about 5, so each kernel keeps 16 independent
/// accumulators; the activations are loaded into registers once for both of the rows they meet. Shifts, masks and
/// loads run beside the multiplies; GFNI would not (it shares their pipes), so ternary fields are unpacked with
/// shifts and masks.
/// </para>
/// <para>
/// The calls skip the GC transition (a plain call: the int6 head makes one per row pair, about 150 ns of work each,
/// not measured against a full P/Invoke transition), so a thread inside one holds up a garbage collection's
/// suspension: each call is kept to a few microseconds (16 tiles, 64 head rows, one row pair).
/// </para>
/// </summary>
public static unsafe partial class Vnni512Kernels
{
    /// <summary>
    /// How far ahead the ternary kernels prefetch in a call of whole tiles: about a tile of 2560 columns (16 or 32 KiB
    /// measured no better, a tile's own length 9% slower). A call over a range of the columns prefetches the same range
    /// of the next tile instead.
    /// </summary>
    internal const long TernaryPrefetchDistance = 8192;

    private static readonly Lazy<(nint Ternary, nint Ternary8, nint Int8Head, nint Int6Head, string Status)> Mapped = new(Load);

    /// <summary>
    /// The row-scaled ternary GEMM's micro-kernel (<see cref="TernaryMatMul"/>): for <c>tiles</c> tiles from tileCodes,
    /// <c>tileBytes</c> apart, each read over <c>blocks</c> 256-column blocks of 4 rows, and the 4 tokens at q + g cols,
    /// dots[16 tile + 4 r + g] = sum_k code[r, k] q[g, k]; it prefetches <c>prefetch</c> bytes ahead. A tile is read
    /// whole when tileBytes is blocks x 256; a longer stride reads a range of its columns. Null where
    /// <see cref="Status"/> says why.
    /// One thread on Zen 5: 456-496 GMAC/s against 337-351 for the vpmaddubsw kernel.
    /// </summary>
    public static delegate* unmanaged[SuppressGCTransition]<byte*, long, long, sbyte*, long, int*, long, long, void> TernaryFourTokenTiles =>
        (delegate* unmanaged[SuppressGCTransition]<byte*, long, long, sbyte*, long, int*, long, long, void>)Mapped.Value.Ternary;

    /// <summary>
    /// The same for 8 tokens, each weight block decoded and read once for all of them: dots[32 tile + 4 r + g] for
    /// tokens g = 0..3, dots[32 tile + 16 + 4 r + g - 4] for 4..7 (two <see cref="TernaryFourTokenTiles"/> layouts).
    /// For column ranges short enough that the 8 tokens' activations stay in L1 beside the weights.
    /// </summary>
    public static delegate* unmanaged[SuppressGCTransition]<byte*, long, long, sbyte*, long, int*, long, long, void> TernaryEightTokenTiles =>
        (delegate* unmanaged[SuppressGCTransition]<byte*, long, long, sbyte*, long, int*, long, long, void>)Mapped.Value.Ternary8;

    /// <summary>
    /// The int8 LM head's 8-token pass (<see cref="Int8MatVec.RunBatch"/>) over <c>pairs</c> pairs of rows from w
    /// (rows of <c>cols</c> int8, a multiple of 64): dots[16 p + 8 r + k] = sum_i w[2 p + r, i] u[k, i] for the 8
    /// tokens' unsigned inputs at u + k cols. Null where <see cref="Status"/> says why.
    /// </summary>
    public static delegate* unmanaged[SuppressGCTransition]<sbyte*, long, byte*, long, int*, void> Int8HeadEightTokensTwoRows =>
        (delegate* unmanaged[SuppressGCTransition]<sbyte*, long, byte*, long, int*, void>)Mapped.Value.Int8Head;

    /// <summary>
    /// The 6-bit LM head's batched pass (<see cref="Int6MatVec.RunBatch"/>) over two rows of a tile and 8 tokens, as
    /// the managed RowPairBatch with its vpmaddwd and vpaddd fused into one vpdpwssd: the 16 raw class-lane
    /// accumulators (row r, token k at lanes + 64 (8 r + k) bytes) for the arguments in <see cref="Int6PairCall"/>.
    /// Null where <see cref="Status"/> says why.
    /// </summary>
    public static delegate* unmanaged[SuppressGCTransition]<Int6PairCall*, void> Int6HeadRowPair =>
        (delegate* unmanaged[SuppressGCTransition]<Int6PairCall*, void>)Mapped.Value.Int6Head;

    /// <summary>Whether the kernels are mapped, or why not (assembles them if that has not happened yet).</summary>
    public static string Status => Mapped.Value.Status;

    /// <summary>AVX-512 VNNI: CPUID leaf 7, ECX bit 11 (the OS's zmm state is implied by AVX-512BW).</summary>
    public static bool CpuSupports => Avx512BW.IsSupported && (X86Base.CpuId(7, 0).Ecx & (1 << 11)) != 0;

    /// <summary>
    /// Whether the kernels can be used here (CPU and OS), without assembling them yet: they are assembled at their
    /// first call (about 8 ms of Iced's encoder with ReadyToRun code, 24 ms without), which a daemon's start-up never
    /// makes (its warm-up prompt is shorter than a GEMM's token group), so READY=1 does not wait for them.
    /// </summary>
    public static bool Usable { get; } = CpuSupports && OperatingSystem.IsLinux();

    private static (nint, nint, nint, nint, string) Load()
    {
        if (!CpuSupports)
        {
            return (0, 0, 0, 0, "no AVX-512 VNNI");
        }

        if (!OperatingSystem.IsLinux())
        {
            return (0, 0, 0, 0, "VNNI kernels not mapped: Linux only");
        }

        // Each kernel branches only relative to itself, so bytes assembled for address 0 run wherever they land.
        byte[][] kernels = [AssembleTernary(4), AssembleTernary(8), AssembleInt8Head(), AssembleInt6Head()];
        int[] at = new int[kernels.Length];
        int end = 0;
        for (int i = 0; i < kernels.Length; i++)
        {
            at[i] = end;
            end = (end + kernels[i].Length + 63) & ~63;
        }

        nuint length = (nuint)((end + 4095) & ~4095);
        byte* page = Mmap(null, length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == (byte*)-1)
        {
            return (0, 0, 0, 0, $"VNNI kernels not mapped: mmap errno {Marshal.GetLastSystemError()}");
        }

        for (int i = 0; i < kernels.Length; i++)
        {
            kernels[i].CopyTo(new Span<byte>(page + at[i], kernels[i].Length));
        }

        if (Mprotect(page, length, ProtRead | ProtExec) != 0)
        {
            int errno = Marshal.GetLastSystemError();
            _ = Munmap(page, length);
            return (0, 0, 0, 0, $"VNNI kernels not mapped: mprotect errno {errno}");
        }

        return ((nint)(page + at[0]), (nint)(page + at[1]), (nint)(page + at[2]), (nint)(page + at[3]), "AVX-512 VNNI");
    }

    /// <summary>
    /// <see cref="TernaryFourTokenTiles"/> (<paramref name="tokens"/> 4) or <see cref="TernaryEightTokenTiles"/> (8)
    /// (System V arguments: rdi, rsi, rdx, rcx, r8, r9, then tileBytes and prefetch on the stack).
    /// </summary>
    internal static byte[] AssembleTernary(int tokens)
    {
        var a = new Assembler(64);
        AssemblerRegister64 tileCodes = rdi, tiles = rsi, blocks = rdx, cols = r8, dots = r9, tileBytes = r12;
        Label tile = a.CreateLabel(), done = a.CreateLabel();
        AssemblerRegister64[] saved = [rbx, r12, r13, r14, r15];
        foreach (AssemblerRegister64 register in saved)
        {
            a.push(register);
        }

        a.mov(eax, 0x03030303);
        a.vpbroadcastd(TernaryMask, eax);
        a.lea(TernaryCols3, __[cols + cols * 2]);
        a.lea(TernaryCols5, __[cols + cols * 4]);
        a.lea(TernaryCols7, __[TernaryCols3 + cols * 4]);
        // The seventh and eighth arguments, above the return address and the saved registers.
        a.mov(tileBytes, __qword_ptr[rsp + 8 * (saved.Length + 1)]);
        a.mov(TernaryPrefetch, __qword_ptr[rsp + 8 * (saved.Length + 2)]);
        a.test(tiles, tiles);
        a.jz(done);
        a.Label(ref tile);
        TernaryRowPair(a, 0, tokens);
        TernaryRowPair(a, 1, tokens);
        a.add(tileCodes, tileBytes);
        a.add(dots, Weights.TernaryMatrix.TileRows * tokens * sizeof(int));
        a.dec(tiles);
        a.jnz(tile);
        a.Label(ref done);
        for (int i = saved.Length - 1; i >= 0; i--)
        {
            a.pop(saved[i]);
        }

        a.vzeroupper();
        a.ret();
        return Bytes(a);
    }

    private static readonly AssemblerRegisterZMM TernaryMask = zmm15;
    private static readonly AssemblerRegister64 TernaryCols3 = r10, TernaryCols5 = r13, TernaryCols7 = r14, TernaryPrefetch = r15;

    /// <summary>
    /// Rows 2 pair and 2 pair + 1 of the tile at rdi (their blocks at rdi + 128 pair + 256 b, + 64) against the 4 or 8
    /// tokens at rcx (cols r8 apart). With 4 tokens each row and token keeps two accumulators (fields 0 and 2, 1 and 3)
    /// against vpdpbusd's latency, and the 8 dots go to r9 + 32 pair; with 8 tokens one each, and the dots of tokens
    /// 0..3 go to r9 + 32 pair, those of tokens 4..7 64 bytes further.
    /// </summary>
    private static void TernaryRowPair(Assembler a, int pair, int tokens)
    {
        AssemblerRegister64 tileCodes = rdi, blocks = rdx, q = rcx, cols = r8, dots = r9;
        AssemblerRegister64 codes = rax, x = rbx, left = r11;
        AssemblerRegisterZMM[] packed = [zmm0, zmm1];
        AssemblerRegisterZMM[][] fields = [[zmm2, zmm3, zmm4, zmm5], [zmm6, zmm7, zmm8, zmm9]];
        AssemblerRegisterZMM[] xv = [zmm10, zmm11];
        AssemblerRegisterZMM Acc(int row, int token, int field) =>
            tokens == 4 ? Accumulators[8 * row + 2 * token + (field & 1)] : Accumulators[8 * row + token];
        AssemblerMemoryOperand Token(int token, int displacement) => Strided(x, cols, TernaryCols3, TernaryCols5, TernaryCols7, token, displacement);

        ZeroAccumulators(a);
        a.lea(codes, __[tileCodes + 2 * pair * Weights.TernaryMatrix.BlockBytes]);
        a.mov(x, q);
        a.mov(left, blocks);
        Label loop = a.CreateLabel(), reduce = a.CreateLabel();
        a.test(left, left);
        a.jz(reduce);
        a.Label(ref loop);

        // A row's blocks are 256 bytes apart, a stride the hardware prefetcher follows late.
        a.prefetcht0(__byte_ptr[codes + TernaryPrefetch]);
        a.prefetcht0(__byte_ptr[codes + TernaryPrefetch + Weights.TernaryMatrix.BlockBytes]);

        // Field l of code byte j (bits 2l, 2l+1) is column l * 64 + j of the block.
        for (int r = 0; r < 2; r++)
        {
            a.vmovdqu64(packed[r], __zmmword_ptr[codes + r * Weights.TernaryMatrix.BlockBytes]);
            a.vpandd(fields[r][0], packed[r], TernaryMask);
            for (int l = 1; l < 4; l++)
            {
                a.vpsrlw(fields[r][l], packed[r], (byte)(2 * l));
                a.vpandd(fields[r][l], fields[r][l], TernaryMask);
            }
        }

        for (int g = 0; g < tokens; g++)
        {
            for (int l = 0; l < 4; l++)
            {
                AssemblerRegisterZMM xl = xv[l & 1];
                a.vmovdqu64(xl, Token(g, l * 64));
                a.vpdpbusd(Acc(0, g, l), fields[0][l], xl);
                a.vpdpbusd(Acc(1, g, l), fields[1][l], xl);
            }
        }

        a.add(codes, Weights.TernaryMatrix.TileBlockBytes);
        a.add(x, 256);
        a.dec(left);
        a.jnz(loop);

        a.Label(ref reduce);
        for (int r = 0; r < 2; r++)
        {
            for (int g = 0; g < 4 && tokens == 4; g++)
            {
                a.vpaddd(Acc(r, g, 0), Acc(r, g, 0), Acc(r, g, 1));
            }

            for (int g = 0; g < tokens; g += 4)
            {
                SumFour(a, Acc(r, g, 0), Acc(r, g + 1, 0), Acc(r, g + 2, 0), Acc(r, g + 3, 0), __xmmword_ptr[dots + 16 * g + 32 * pair + 16 * r]);
            }
        }
    }

    /// <summary><see cref="Int8HeadEightTokensTwoRows"/> (System V arguments: rdi, rsi, rdx, rcx, r8).</summary>
    internal static byte[] AssembleInt8Head()
    {
        var a = new Assembler(64);
        AssemblerRegister64 w = rdi, pairs = rsi, inputs = rdx, cols = rcx, dots = r8, cols3 = r9, cols5 = r10, cols7 = r11;
        AssemblerRegister64 u = rax, rowEnd = rbx;
        AssemblerRegisterZMM[] row = [zmm0, zmm1];
        AssemblerRegisterZMM[] x = [zmm2, zmm3];

        AssemblerMemoryOperand Token(int k) => Strided(u, cols, cols3, cols5, cols7, k, 0);

        a.push(rbx);
        a.lea(cols3, __[cols + cols * 2]);
        a.lea(cols5, __[cols + cols * 4]);
        a.lea(cols7, __[cols3 + cols * 4]);
        Label pair = a.CreateLabel(), loop = a.CreateLabel(), done = a.CreateLabel();
        a.test(pairs, pairs);
        a.jz(done);
        a.Label(ref pair);
        ZeroAccumulators(a);
        a.mov(u, inputs);
        a.lea(rowEnd, __[inputs + cols]);
        a.Label(ref loop);

        // Two rows at a time stream from two places; ask for the next pair's columns (2 cols ahead) early.
        a.prefetcht0(__byte_ptr[w + cols * 2]);
        a.prefetcht0(__byte_ptr[w + cols3]);
        a.vmovdqu64(row[0], __zmmword_ptr[w]);
        a.vmovdqu64(row[1], __zmmword_ptr[w + cols]);
        // Row r and token k: accumulator 8 r + k.
        for (int k = 0; k < 8; k++)
        {
            AssemblerRegisterZMM xk = x[k & 1];
            a.vmovdqu64(xk, Token(k));
            a.vpdpbusd(Accumulators[k], xk, row[0]);
            a.vpdpbusd(Accumulators[8 + k], xk, row[1]);
        }

        a.add(w, 64);
        a.add(u, 64);
        a.cmp(u, rowEnd);
        a.jb(loop);

        for (int r = 0; r < 2; r++)
        {
            SumFour(a, Accumulators[8 * r], Accumulators[8 * r + 1], Accumulators[8 * r + 2], Accumulators[8 * r + 3], __xmmword_ptr[dots + 32 * r]);
            SumFour(a, Accumulators[8 * r + 4], Accumulators[8 * r + 5], Accumulators[8 * r + 6], Accumulators[8 * r + 7], __xmmword_ptr[dots + 32 * r + 16]);
        }

        // w has passed row 0 and stands at row 1: the next pair starts a row later.
        a.add(w, cols);
        a.add(dots, 64);
        a.dec(pairs);
        a.jnz(pair);

        a.Label(ref done);
        a.pop(rbx);
        a.vzeroupper();
        a.ret();
        return Bytes(a);
    }

    /// <summary><see cref="Int6HeadRowPair"/> (System V argument: rdi, the <see cref="Int6PairCall"/>).</summary>
    internal static byte[] AssembleInt6Head()
    {
        var a = new Assembler(64);
        AssemblerRegister64 nibbles = rax, top = rbx, scalesA = rcx, scalesB = r8, x = rsi, s1 = r9, s3 = r10, s5 = r11, s7 = r12;
        AssemblerRegister64 blocks = r13, groupsPerBlock = r14, lanes = r15;
        AssemblerRegisterZMM lowShift = zmm26, highShift = zmm27, nibble = zmm28, field = zmm29, offset = zmm30, scaleControl = zmm31;
        AssemblerRegisterZMM[] even = [zmm16, zmm18], odd = [zmm17, zmm19], scales = [zmm24, zmm25];
        AssemblerRegisterZMM xe = zmm20, xo = zmm21, t1 = zmm22, t2 = zmm23;
        AssemblerMemoryOperand Token(int k, int displacement) => Strided(x, s1, s3, s5, s7, k, displacement);

        foreach (AssemblerRegister64 saved in (AssemblerRegister64[])[rbx, r12, r13, r14, r15])
        {
            a.push(saved);
        }

        a.mov(nibbles, __qword_ptr[rdi + Int6PairCall.NibblesAt]);
        a.mov(top, __qword_ptr[rdi + Int6PairCall.TopAt]);
        a.mov(scalesA, __qword_ptr[rdi + Int6PairCall.ScalesAt]);
        a.mov(scalesB, scalesA);
        a.add(scalesB, __qword_ptr[rdi + Int6PairCall.ScaleStrideAt]);
        a.mov(x, __qword_ptr[rdi + Int6PairCall.InputsAt]);
        a.mov(s1, __qword_ptr[rdi + Int6PairCall.InputStrideAt]);
        a.lea(s3, __[s1 + s1 * 2]);
        a.lea(s5, __[s1 + s1 * 4]);
        a.lea(s7, __[s3 + s1 * 4]);
        a.mov(blocks, __qword_ptr[rdi + Int6PairCall.BlocksAt]);
        a.mov(groupsPerBlock, __qword_ptr[rdi + Int6PairCall.GroupsPerBlockAt]);
        a.mov(lanes, __qword_ptr[rdi + Int6PairCall.ConstantsAt]);
        AssemblerRegisterZMM[] constants = [lowShift, highShift, nibble, field, offset, scaleControl];
        for (int i = 0; i < constants.Length; i++)
        {
            a.vmovdqu64(constants[i], __zmmword_ptr[lanes + 64 * i]);
        }

        a.mov(lanes, __qword_ptr[rdi + Int6PairCall.LanesAt]);
        foreach (AssemblerRegisterZMM s in Int6Accumulators)
        {
            a.vpxord(s, s, s);
        }

        Label loop = a.CreateLabel(), done = a.CreateLabel();
        a.test(blocks, blocks);
        a.jz(done);
        a.Label(ref loop);
        a.prefetcht0(__byte_ptr[nibbles + Int6PrefetchDistance]);
        a.prefetcht0(__byte_ptr[nibbles + Int6PrefetchDistance + 64]);
        a.prefetcht0(__byte_ptr[top + Int6PrefetchDistance]);
        for (int r = 0; r < 2; r++)
        {
            // Codes (0..63): the 4-bit plane's low (high) nibbles, and the 2-bit plane, in both 256-bit halves, shifted
            // so that each column's field lands on bits 4..5; then the even and odd 16-column runs, less 32.
            AssemblerRegisterZMM packed = xe, plane = xo, low = t1, high = t2;
            a.vmovdqu64(packed, __zmmword_ptr[nibbles + 64 * r]);
            a.vbroadcasti64x4(plane, __ymmword_ptr[top + 32 * r]);
            a.vpsllvw(low, plane, lowShift);
            a.vpandd(low, low, field);
            a.vpternlogd(low, packed, nibble, BitSelect);
            a.vpsrlw(high, packed, 4);
            a.vpsrlvw(plane, plane, highShift);
            a.vpandd(plane, plane, field);
            a.vpternlogd(plane, high, nibble, BitSelect);
            a.vshufi64x2(even[r], low, plane, Weights.Int6Matrix.EvenRuns);
            a.vshufi64x2(odd[r], low, plane, Weights.Int6Matrix.OddRuns);
            a.vpsubb(even[r], even[r], offset);
            a.vpsubb(odd[r], odd[r], offset);
            a.vpbroadcastd(scales[r], __dword_ptr[r == 0 ? scalesA : scalesB]);
            a.vpshufb(scales[r], scales[r], scaleControl);
            a.vpsraw(scales[r], scales[r], 8);
        }

        for (int k = 0; k < 8; k++)
        {
            a.vmovdqu64(xe, Token(k, 0));
            a.vmovdqu64(xo, Token(k, 64));
            for (int r = 0; r < 2; r++)
            {
                a.vpmaddubsw(t1, xe, even[r]);
                a.vpmaddubsw(t2, xo, odd[r]);
                a.vpaddw(t1, t1, t2);
                a.vpdpwssd(Int6Accumulators[8 * r + k], t1, scales[r]);
            }
        }

        a.add(nibbles, Weights.Int6Matrix.TileRows * Weights.Int6Matrix.BlockBytes);
        a.add(top, Weights.Int6Matrix.TileRows * Weights.Int6Matrix.BlockBytes);
        a.add(scalesA, groupsPerBlock);
        a.add(scalesB, groupsPerBlock);
        a.add(x, Weights.Int6Matrix.BlockCols);
        a.dec(blocks);
        a.jnz(loop);

        a.Label(ref done);
        for (int i = 0; i < Int6Accumulators.Length; i++)
        {
            a.vmovdqu64(__zmmword_ptr[lanes + 64 * i], Int6Accumulators[i]);
        }

        foreach (AssemblerRegister64 saved in (AssemblerRegister64[])[r15, r14, r13, r12, rbx])
        {
            a.pop(saved);
        }

        a.vzeroupper();
        a.ret();
        return Bytes(a);
    }

    // (a & b) | c for vpternlogd dst = c, src2 = a, src3 = b: the codes' nibble bits from a under mask b, the field c.
    private const byte BitSelect = 0xF8;

    // About two tiles ahead of the row pair's sweep. Measured with 8 streams on the 2B head (2 threads, minimum of 5
    // interleaved runs): 4096 bytes 9.4 ms, 8192 6.1-7.4 ms, 16384 6.0-6.4 ms, 32768 6.0-7.1 ms.
    private const int Int6PrefetchDistance = 16384;

    private static readonly AssemblerRegisterZMM[] Int6Accumulators =
        [zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14, zmm15];

    /// <summary>The 64 bytes at x + k s + displacement for k in 0..7, s3, s5 and s7 holding 3 s, 5 s and 7 s (scaled
    /// indexes give the rest).</summary>
    private static AssemblerMemoryOperand Strided(AssemblerRegister64 x, AssemblerRegister64 s, AssemblerRegister64 s3,
        AssemblerRegister64 s5, AssemblerRegister64 s7, int k, int displacement) => k switch
    {
        0 => __zmmword_ptr[x + displacement],
        1 => __zmmword_ptr[x + s + displacement],
        2 => __zmmword_ptr[x + s * 2 + displacement],
        3 => __zmmword_ptr[x + s3 + displacement],
        4 => __zmmword_ptr[x + s * 4 + displacement],
        5 => __zmmword_ptr[x + s5 + displacement],
        6 => __zmmword_ptr[x + s3 * 2 + displacement],
        _ => __zmmword_ptr[x + s7 + displacement],
    };

    private static readonly AssemblerRegisterZMM[] Accumulators =
        [zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25, zmm26, zmm27, zmm28, zmm29, zmm30, zmm31];

    private static void ZeroAccumulators(Assembler a)
    {
        foreach (AssemblerRegisterZMM s in Accumulators)
        {
            a.vpxord(s, s, s);
        }
    }

    /// <summary>
    /// The 4 lane sums of s0..s3 into 4 int32 at <paramref name="to"/>: interleaved before folding, as the managed
    /// ternary kernel's SumFour (per 128-bit lane u = [s0, s1] pair sums, v = [s2, s3], then [s0, s1, s2, s3]).
    /// </summary>
    private static void SumFour(Assembler a, AssemblerRegisterZMM s0, AssemblerRegisterZMM s1, AssemblerRegisterZMM s2,
        AssemblerRegisterZMM s3, AssemblerMemoryOperand to)
    {
        AssemblerRegisterZMM u = zmm12, v = zmm13, t = zmm14;
        a.vpunpckldq(u, s0, s1);
        a.vpunpckhdq(t, s0, s1);
        a.vpaddd(u, u, t);
        a.vpunpckldq(v, s2, s3);
        a.vpunpckhdq(t, s2, s3);
        a.vpaddd(v, v, t);
        a.vpunpcklqdq(t, u, v);
        a.vpunpckhqdq(u, u, v);
        a.vpaddd(u, u, t);
        a.vextracti64x4(ymm13, u, 1);
        a.vpaddd(ymm12, ymm12, ymm13);
        a.vextracti128(xmm13, ymm12, 1);
        a.vpaddd(xmm12, xmm12, xmm13);
        a.vmovdqu(to, xmm12);
    }

    private static byte[] Bytes(Assembler a)
    {
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), 0);
        return stream.ToArray();
    }

    private const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial byte* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(void* address, nuint length, int protection);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* address, nuint length);
}

/// <summary>The arguments of <see cref="Vnni512Kernels.Int6HeadRowPair"/>, one call's, on the caller's stack.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct Int6PairCall
{
    internal const int NibblesAt = 0, TopAt = 8, ScalesAt = 16, ScaleStrideAt = 24, InputsAt = 32, InputStrideAt = 40;
    internal const int BlocksAt = 48, GroupsPerBlockAt = 56, LanesAt = 64, ConstantsAt = 72;

    /// <summary>The first row's 4-bit plane in block 0 (the second row's 64 bytes on; a block's rows 384 bytes on).</summary>
    public byte* Nibbles;

    /// <summary>The first row's 2-bit plane in block 0 (the second row's 32 bytes on).</summary>
    public byte* Top;

    /// <summary>The first row's group scales (the second row's <see cref="ScaleStride"/> on).</summary>
    public byte* Scales;

    public long ScaleStride;

    /// <summary>Token 0's paired unsigned input (token k's <see cref="InputStride"/> k on).</summary>
    public byte* Inputs;

    public long InputStride;

    public long Blocks;

    public long GroupsPerBlock;

    /// <summary>Out: the 16 accumulators, [row][token] x 16 int32.</summary>
    public int* Lanes;

    /// <summary>Read-only vectors: low and high plane shifts, 0x0F, 0x30, 32, the paired group-scale control.</summary>
    public byte* Constants;
}
