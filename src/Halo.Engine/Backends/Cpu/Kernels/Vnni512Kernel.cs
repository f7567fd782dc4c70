using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Halo.Engine.Backends.Cpu.Kernels;

/// <summary>
/// The row-scaled GEMM's 4-token x 2-row micro-kernel (<see cref="TernaryMatMul"/>'s FourTokensTwoRows) with
/// AVX-512 VNNI: vpdpbusd zmm multiplies 64 code bytes by 64 int8 activations and adds each 4 products into an int32
/// lane, one instruction where vpmaddubsw + vpaddw take two. .NET 10 has no intrinsic for it (AvxVnni stops at 256
/// bits, Avx10v1 is not reported on Zen 5), so the kernel is assembled at start-up with Iced into a page of its own
/// and called through an unmanaged function pointer, as oneDNN assembles its kernels with Xbyak.
/// <para>
/// On Zen 5 vpdpbusd zmm issues 2 per cycle with a latency of about 5, so 8 accumulators (one per row and token)
/// would wait on each other: each keeps two, one for fields 0 and 2, one for 1 and 3. The activations are loaded
/// into registers once for both rows; as memory operands of vpdpbusd they cost 21 cycles per block instead of 16.6.
/// The vpmaddubsw body takes 23.5 (all three measured from L1 on the same machine). GFNI unpacking would run on the
/// multiply pipes, so the fields are unpacked with shifts and masks, which run beside them.
/// </para>
/// </summary>
public static unsafe partial class Vnni512Kernel
{
    private const int PrefetchDistance = 8192;
    private const int BlockStride = Weights.TernaryMatrix.TileRows * Weights.TernaryMatrix.BlockBytes;

    private static readonly Lazy<(nint Code, string Status)> Assembled = new(Load);

    /// <summary>
    /// dots[4 r + g] = sum_k code[r, k] q[g, k] for two adjacent rows r of a tile (rowCodes, rowCodes + 64) and the
    /// 4 tokens at q, q + cols, q + 2 cols, q + 3 cols, over <c>blocks</c> blocks: null where the CPU lacks AVX-512
    /// VNNI or the code could not be mapped executable.
    /// </summary>
    public static delegate* unmanaged[SuppressGCTransition]<byte*, long, sbyte*, long, int*, void> FourTokensTwoRows =>
        (delegate* unmanaged[SuppressGCTransition]<byte*, long, sbyte*, long, int*, void>)Assembled.Value.Code;

    /// <summary>Whether the kernel is in use, or why not, for the backend's description.</summary>
    public static string Status => Assembled.Value.Status;

    /// <summary>AVX-512 VNNI: CPUID leaf 7, ECX bit 11 (the OS's zmm state is implied by AVX-512BW).</summary>
    public static bool CpuSupports => Avx512BW.IsSupported && (X86Base.CpuId(7, 0).Ecx & (1 << 11)) != 0;

    private static (nint, string) Load()
    {
        if (!CpuSupports)
        {
            return (0, "no AVX-512 VNNI");
        }

        if (!OperatingSystem.IsLinux())
        {
            return (0, "VNNI kernel not mapped: Linux only");
        }

        byte[] code = Assemble();
        nuint length = (nuint)((code.Length + 4095) & ~4095);
        byte* page = Mmap(null, length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == (byte*)-1)
        {
            return (0, $"VNNI kernel not mapped: mmap errno {Marshal.GetLastSystemError()}");
        }

        code.CopyTo(new Span<byte>(page, code.Length));
        if (Mprotect(page, length, ProtRead | ProtExec) != 0)
        {
            int errno = Marshal.GetLastSystemError();
            _ = Munmap(page, length);
            return (0, $"VNNI kernel not mapped: mprotect errno {errno}");
        }

        return ((nint)page, "AVX-512 VNNI");
    }

    /// <summary>
    /// The kernel's machine code (System V arguments: rdi, rsi, rdx, rcx, r8). It branches only relative to itself,
    /// so the bytes assembled for address 0 run wherever they are mapped.
    /// </summary>
    internal static byte[] Assemble()
    {
        var a = new Assembler(64);
        AssemblerRegister64 codes = rdi, blocks = rsi, q = rdx, cols = rcx, dots = r8, cols2 = r9, cols3 = r10;
        AssemblerRegisterZMM mask = zmm15;
        AssemblerRegisterZMM[] packed = [zmm0, zmm1];
        AssemblerRegisterZMM[][] fields = [[zmm2, zmm3, zmm4, zmm5], [zmm6, zmm7, zmm8, zmm9]];
        AssemblerRegisterZMM[] x = [zmm10, zmm11];
        AssemblerRegisterZMM[] acc = [zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25, zmm26, zmm27, zmm28, zmm29, zmm30, zmm31];
        AssemblerRegisterZMM Acc(int row, int token, int field) => acc[8 * row + 2 * token + (field & 1)];
        AssemblerMemoryOperand Token(int token, int displacement) => token switch
        {
            0 => __zmmword_ptr[q + displacement],
            1 => __zmmword_ptr[q + cols + displacement],
            2 => __zmmword_ptr[q + cols2 + displacement],
            _ => __zmmword_ptr[q + cols3 + displacement],
        };

        a.mov(eax, 0x03030303);
        a.vpbroadcastd(mask, eax);
        a.lea(cols2, __[cols + cols]);
        a.lea(cols3, __[cols2 + cols]);
        foreach (AssemblerRegisterZMM s in acc)
        {
            a.vpxord(s, s, s);
        }

        Label loop = a.CreateLabel(), reduce = a.CreateLabel();
        a.test(blocks, blocks);
        a.jz(reduce);
        a.Label(ref loop);

        // A row's blocks are 256 bytes apart, a stride the hardware prefetcher follows late.
        a.prefetcht0(__byte_ptr[codes + PrefetchDistance]);
        a.prefetcht0(__byte_ptr[codes + PrefetchDistance + Weights.TernaryMatrix.BlockBytes]);

        // Field l of code byte j (bits 2l, 2l+1) is column l * 64 + j of the block.
        for (int r = 0; r < 2; r++)
        {
            a.vmovdqu64(packed[r], __zmmword_ptr[codes + r * Weights.TernaryMatrix.BlockBytes]);
            a.vpandd(fields[r][0], packed[r], mask);
            for (int l = 1; l < 4; l++)
            {
                a.vpsrlw(fields[r][l], packed[r], (byte)(2 * l));
                a.vpandd(fields[r][l], fields[r][l], mask);
            }
        }

        for (int g = 0; g < 4; g++)
        {
            for (int l = 0; l < 4; l++)
            {
                AssemblerRegisterZMM xl = x[l & 1];
                a.vmovdqu64(xl, Token(g, l * 64));
                a.vpdpbusd(Acc(0, g, l), fields[0][l], xl);
                a.vpdpbusd(Acc(1, g, l), fields[1][l], xl);
            }
        }

        a.add(codes, BlockStride);
        a.add(q, 256);
        a.dec(blocks);
        a.jnz(loop);

        a.Label(ref reduce);
        for (int r = 0; r < 2; r++)
        {
            for (int g = 0; g < 4; g++)
            {
                a.vpaddd(Acc(r, g, 0), Acc(r, g, 0), Acc(r, g, 1));
            }

            SumFour(a, Acc(r, 0, 0), Acc(r, 1, 0), Acc(r, 2, 0), Acc(r, 3, 0), __xmmword_ptr[dots + 16 * r]);
        }

        a.vzeroupper();
        a.ret();

        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), 0);
        return stream.ToArray();
    }

    /// <summary>
    /// The 4 lane sums of s0..s3 into 4 int32 at <paramref name="to"/>: interleaved before folding, as the managed
    /// kernel's SumFour (per 128-bit lane u = [s0, s1] pair sums, v = [s2, s3], w = [s0, s1, s2, s3]).
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

    private const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial byte* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(void* address, nuint length, int protection);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* address, nuint length);
}
