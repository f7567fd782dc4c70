using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// Micro-kernels with AVX-512 VNNI: vpdpbusd zmm multiplies 64 unsigned by 64 signed bytes and adds each 4 products
/// into an int32 lane, one instruction where vpmaddubsw + vpaddw (or + vpmaddwd) take two. .NET 10 has no intrinsic
/// for it (AvxVnni stops at 256 bits, Avx10v1 is not reported on Zen 5), so the kernels are assembled at start-up
/// with Iced into a page of their own and called through unmanaged function pointers, as oneDNN assembles its
/// kernels with Xbyak.
/// <para>
/// On Zen 5 vpdpbusd zmm issues 2 per cycle with a latency of about 5, so each kernel keeps 16 independent
/// accumulators; the activations are loaded into registers once for both of the rows they meet. Shifts, masks and
/// loads run beside the multiplies; GFNI would not (it shares their pipes), so ternary fields are unpacked with
/// shifts and masks.
/// </para>
/// </summary>
public static unsafe partial class Vnni512Kernels
{
    private const int PrefetchDistance = 8192;
    private const int TernaryBlockStride = Weights.TernaryMatrix.TileRows * Weights.TernaryMatrix.BlockBytes;

    private static readonly Lazy<(nint Ternary, nint Int8Head, string Status)> Mapped = new(Load);

    /// <summary>
    /// The row-scaled ternary GEMM's micro-kernel (<see cref="TernaryMatMul"/>): for <c>tiles</c> consecutive tiles
    /// from tileCodes (each <c>blocks</c> 256-column blocks of 4 rows) and the 4 tokens at q + g cols,
    /// dots[16 tile + 4 r + g] = sum_k code[r, k] q[g, k]. Null where <see cref="Status"/> says why.
    /// One thread, 2560 columns, on Zen 5: 452 GMAC/s against 339 for the vpmaddubsw kernel.
    /// </summary>
    public static delegate* unmanaged[SuppressGCTransition]<byte*, long, long, sbyte*, long, int*, void> TernaryFourTokenTiles =>
        (delegate* unmanaged[SuppressGCTransition]<byte*, long, long, sbyte*, long, int*, void>)Mapped.Value.Ternary;

    /// <summary>
    /// The int8 LM head's 8-token pass (<see cref="Int8MatVec.RunBatch"/>) over <c>pairs</c> pairs of rows from w
    /// (rows of <c>cols</c> int8, a multiple of 64): dots[16 p + 8 r + k] = sum_i w[2 p + r, i] u[k, i] for the 8
    /// tokens' unsigned inputs at u + k cols. Null where <see cref="Status"/> says why.
    /// </summary>
    public static delegate* unmanaged[SuppressGCTransition]<sbyte*, long, byte*, long, int*, void> Int8HeadEightTokensTwoRows =>
        (delegate* unmanaged[SuppressGCTransition]<sbyte*, long, byte*, long, int*, void>)Mapped.Value.Int8Head;

    /// <summary>Whether the kernels are in use, or why not, for the backend's description.</summary>
    public static string Status => Mapped.Value.Status;

    /// <summary>AVX-512 VNNI: CPUID leaf 7, ECX bit 11 (the OS's zmm state is implied by AVX-512BW).</summary>
    public static bool CpuSupports => Avx512BW.IsSupported && (X86Base.CpuId(7, 0).Ecx & (1 << 11)) != 0;

    /// <summary>
    /// Whether the kernels can be used here (CPU and OS), without assembling them yet: they are assembled at their
    /// first call (about 8 ms of Iced's encoder with ReadyToRun code, 24 ms without), which a daemon's start-up never
    /// makes (its warm-up prompt is shorter than a GEMM's token group), so READY=1 does not wait for them.
    /// </summary>
    public static bool Usable { get; } = CpuSupports && OperatingSystem.IsLinux();

    private static (nint, nint, string) Load()
    {
        if (!CpuSupports)
        {
            return (0, 0, "no AVX-512 VNNI");
        }

        if (!OperatingSystem.IsLinux())
        {
            return (0, 0, "VNNI kernels not mapped: Linux only");
        }

        // Each kernel branches only relative to itself, so bytes assembled for address 0 run wherever they land.
        byte[] ternary = AssembleTernary(), int8Head = AssembleInt8Head();
        int int8At = (ternary.Length + 63) & ~63;
        nuint length = (nuint)((int8At + int8Head.Length + 4095) & ~4095);
        byte* page = Mmap(null, length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == (byte*)-1)
        {
            return (0, 0, $"VNNI kernels not mapped: mmap errno {Marshal.GetLastSystemError()}");
        }

        ternary.CopyTo(new Span<byte>(page, ternary.Length));
        int8Head.CopyTo(new Span<byte>(page + int8At, int8Head.Length));
        if (Mprotect(page, length, ProtRead | ProtExec) != 0)
        {
            int errno = Marshal.GetLastSystemError();
            _ = Munmap(page, length);
            return (0, 0, $"VNNI kernels not mapped: mprotect errno {errno}");
        }

        return ((nint)page, (nint)(page + int8At), "AVX-512 VNNI");
    }

    /// <summary><see cref="TernaryFourTokenTiles"/> (System V arguments: rdi, rsi, rdx, rcx, r8, r9).</summary>
    internal static byte[] AssembleTernary()
    {
        var a = new Assembler(64);
        AssemblerRegister64 tileCodes = rdi, tiles = rsi, blocks = rdx, q = rcx, cols = r8, dots = r9, tileBytes = r12;
        Label tile = a.CreateLabel(), done = a.CreateLabel();
        a.push(rbx);
        a.push(r12);
        a.mov(eax, 0x03030303);
        a.vpbroadcastd(TernaryMask, eax);
        a.lea(TernaryCols3, __[cols + cols * 2]);
        a.mov(tileBytes, blocks);
        a.shl(tileBytes, 8);
        a.test(tiles, tiles);
        a.jz(done);
        a.Label(ref tile);
        TernaryRowPair(a, 0);
        TernaryRowPair(a, 1);
        a.add(tileCodes, tileBytes);
        a.add(dots, 16 * sizeof(int));
        a.dec(tiles);
        a.jnz(tile);
        a.Label(ref done);
        a.pop(r12);
        a.pop(rbx);
        a.vzeroupper();
        a.ret();
        return Bytes(a);
    }

    private static readonly AssemblerRegisterZMM TernaryMask = zmm15;
    private static readonly AssemblerRegister64 TernaryCols3 = r10;

    /// <summary>
    /// Rows 2 pair and 2 pair + 1 of the tile at rdi (their blocks at rdi + 128 pair + 256 b, + 64) against the 4 tokens
    /// at rcx (cols r8 apart): each row and token keeps two accumulators, one for fields 0 and 2, one for 1 and 3; the
    /// 8 dots go to r9 + 32 pair.
    /// </summary>
    private static void TernaryRowPair(Assembler a, int pair)
    {
        AssemblerRegister64 tileCodes = rdi, blocks = rdx, q = rcx, cols = r8, dots = r9, cols3 = TernaryCols3;
        AssemblerRegister64 codes = rax, x = rbx, left = r11;
        AssemblerRegisterZMM[] packed = [zmm0, zmm1];
        AssemblerRegisterZMM[][] fields = [[zmm2, zmm3, zmm4, zmm5], [zmm6, zmm7, zmm8, zmm9]];
        AssemblerRegisterZMM[] xv = [zmm10, zmm11];
        AssemblerRegisterZMM Acc(int row, int token, int field) => Accumulators[8 * row + 2 * token + (field & 1)];
        AssemblerMemoryOperand Token(int token, int displacement) => token switch
        {
            0 => __zmmword_ptr[x + displacement],
            1 => __zmmword_ptr[x + cols + displacement],
            2 => __zmmword_ptr[x + cols * 2 + displacement],
            _ => __zmmword_ptr[x + cols3 + displacement],
        };

        ZeroAccumulators(a);
        a.lea(codes, __[tileCodes + 2 * pair * Weights.TernaryMatrix.BlockBytes]);
        a.mov(x, q);
        a.mov(left, blocks);
        Label loop = a.CreateLabel(), reduce = a.CreateLabel();
        a.test(left, left);
        a.jz(reduce);
        a.Label(ref loop);

        // A row's blocks are 256 bytes apart, a stride the hardware prefetcher follows late.
        a.prefetcht0(__byte_ptr[codes + PrefetchDistance]);
        a.prefetcht0(__byte_ptr[codes + PrefetchDistance + Weights.TernaryMatrix.BlockBytes]);

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

        for (int g = 0; g < 4; g++)
        {
            for (int l = 0; l < 4; l++)
            {
                AssemblerRegisterZMM xl = xv[l & 1];
                a.vmovdqu64(xl, Token(g, l * 64));
                a.vpdpbusd(Acc(0, g, l), fields[0][l], xl);
                a.vpdpbusd(Acc(1, g, l), fields[1][l], xl);
            }
        }

        a.add(codes, TernaryBlockStride);
        a.add(x, 256);
        a.dec(left);
        a.jnz(loop);

        a.Label(ref reduce);
        for (int r = 0; r < 2; r++)
        {
            for (int g = 0; g < 4; g++)
            {
                a.vpaddd(Acc(r, g, 0), Acc(r, g, 0), Acc(r, g, 1));
            }

            SumFour(a, Acc(r, 0, 0), Acc(r, 1, 0), Acc(r, 2, 0), Acc(r, 3, 0), __xmmword_ptr[dots + 32 * pair + 16 * r]);
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

        // Row r and token k: accumulator 8 r + k.
        AssemblerMemoryOperand Token(int k) => k switch
        {
            0 => __zmmword_ptr[u],
            1 => __zmmword_ptr[u + cols],
            2 => __zmmword_ptr[u + cols * 2],
            3 => __zmmword_ptr[u + cols3],
            4 => __zmmword_ptr[u + cols * 4],
            5 => __zmmword_ptr[u + cols5],
            6 => __zmmword_ptr[u + cols3 * 2],
            _ => __zmmword_ptr[u + cols7],
        };

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
