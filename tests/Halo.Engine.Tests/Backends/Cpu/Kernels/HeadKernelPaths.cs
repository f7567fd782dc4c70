using System.Runtime.Intrinsics.X86;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

/// <summary>The SIMD paths of the 4-bit and 6-bit LM-head kernels (Int4MatVec, Int6MatVec), and the shapes both are
/// checked on.</summary>
public static class HeadKernelPaths
{
    public enum KernelPath
    {
        Avx512,
        Avx2,
        Scalar,
    }

    /// <summary>Ragged row counts (not a multiple of the 4-row tile), columns that need padding, both group sizes.</summary>
    public static TheoryData<KernelPath, int, int, int> Shapes()
    {
        var data = new TheoryData<KernelPath, int, int, int>();
        foreach (KernelPath path in Enum.GetValues<KernelPath>())
        {
            data.Add(path, 1, 128, 32);
            data.Add(path, 7, 200, 32);
            data.Add(path, 50, 320, 64);
            data.Add(path, 257, 256, 32);
            data.Add(path, 33, 2560, 64);
            data.Add(path, 18, 2560, 32);
        }

        return data;
    }

    /// <summary>Whether this machine runs <paramref name="path"/> (tests of the others return early).</summary>
    public static bool Supported(KernelPath path) => path switch
    {
        KernelPath.Avx512 => Avx512BW.IsSupported,
        KernelPath.Avx2 => Avx2.IsSupported,
        _ => true,
    };
}
