using Halo.Engine.Backends.Cpu.Kernels;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

[Collection(KernelSwitchesCollection.Name)]
public sealed unsafe class Vnni512KernelsTests
{
    [Fact]
    public void Kernels_CpuWithAvx512Vnni_AreMappedAndInUse()
    {
        // Where the CPU has the instructions, the generated kernels must not fall back silently (the GEMM would run
        // at the vpmaddubsw kernel's speed with nothing to say so but the backend's description).
        Assert.Equal(Vnni512Kernels.CpuSupports, Vnni512Kernels.TernaryFourTokenTiles != null);
        Assert.Equal(Vnni512Kernels.CpuSupports, Vnni512Kernels.TernaryEightTokenTiles != null);
        Assert.Equal(Vnni512Kernels.CpuSupports, Vnni512Kernels.Int8HeadEightTokensTwoRows != null);
        Assert.Equal(Vnni512Kernels.CpuSupports, Vnni512Kernels.Int6HeadRowPair != null);
        Assert.Equal(Vnni512Kernels.CpuSupports, Int6MatVec.UseVnni512);
        Assert.Equal(Vnni512Kernels.CpuSupports, Vnni512Kernels.Usable);
        Assert.Equal(Vnni512Kernels.CpuSupports, TernaryMatMul.UseVnni512);
        Assert.Equal(Vnni512Kernels.CpuSupports, Int8MatVec.UseVnni512);
        Assert.Equal(Vnni512Kernels.CpuSupports ? "AVX-512 VNNI" : "no AVX-512 VNNI", Vnni512Kernels.Status);
    }

    [Fact]
    public void TernaryFourTokenTiles_TwoTilesOfOneBlock_SumEachRowAgainstEachToken()
    {
        if (!Vnni512Kernels.CpuSupports)
        {
            return;
        }

        // Two tiles of one block (4 rows x 64 code bytes each; field l of byte j = column 64 l + j). Tile 0: row 0 all
        // code 1, row 1 code 2 on column 5, row 2 code 1 on column 64 + 7, row 3 code 0. Tile 1: row 3 all code 2.
        // Token g's activations are g + 1 everywhere but column 5, which is -128.
        byte* codes = stackalloc byte[512];
        new Span<byte>(codes, 512).Clear();
        new Span<byte>(codes, 64).Fill(0b01_01_01_01);
        codes[64 + 5] = 0b10;
        codes[128 + 7] = 0b01_00;
        new Span<byte>(codes + 256 + 192, 64).Fill(0b10_10_10_10);
        sbyte* q = stackalloc sbyte[4 * 256];
        for (int g = 0; g < 4; g++)
        {
            new Span<sbyte>(q + g * 256, 256).Fill((sbyte)(g + 1));
            q[g * 256 + 5] = -128;
        }

        int* dots = stackalloc int[32];
        Vnni512Kernels.TernaryFourTokenTiles(codes, 2, 1, q, 256, dots, 256, 8192);
        for (int g = 0; g < 4; g++)
        {
            int sum = 255 * (g + 1) - 128;
            Assert.Equal(sum, dots[g]);
            Assert.Equal(-256, dots[4 + g]);
            Assert.Equal(g + 1, dots[8 + g]);
            Assert.Equal(0, dots[12 + g]);
            Assert.Equal(0, dots[16 + g]);
            Assert.Equal(2 * sum, dots[28 + g]);
        }
    }

    [Fact]
    public void TernaryEightTokenTiles_OneTile_SplitsTheDotsIntoTwoGroupsOfFour()
    {
        if (!Vnni512Kernels.CpuSupports)
        {
            return;
        }

        // One tile of two blocks: row r's codes are all r (0..2, and 1 again for row 3); token g's activations all g - 3.
        byte* codes = stackalloc byte[512];
        for (int b = 0; b < 2; b++)
        {
            for (int r = 0; r < 4; r++)
            {
                int code = r == 3 ? 1 : r;
                new Span<byte>(codes + 256 * b + 64 * r, 64).Fill((byte)(code * 0b01_01_01_01));
            }
        }

        sbyte* q = stackalloc sbyte[8 * 512];
        for (int g = 0; g < 8; g++)
        {
            new Span<sbyte>(q + g * 512, 512).Fill((sbyte)(g - 3));
        }

        int* dots = stackalloc int[32];
        Vnni512Kernels.TernaryEightTokenTiles(codes, 1, 2, q, 512, dots, 512, 8192);
        for (int r = 0; r < 4; r++)
        {
            int code = r == 3 ? 1 : r;
            for (int g = 0; g < 8; g++)
            {
                Assert.Equal(512 * code * (g - 3), dots[(g < 4 ? 0 : 16) + 4 * r + g % 4]);
            }
        }
    }
}
