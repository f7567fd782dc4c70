namespace Halo.Installer.Doctor.Checks;

/// <summary>
/// `opencl.icd`: an OpenCL ICD that ILGPU's OpenCL backend can use on this GPU. ILGPU needs OpenCL 2.0 with
/// the generic address space: AMD's ROCm OpenCL (libamdocl64) has it; Mesa (Clover, rusticl) and PoCL 3.x
/// do not, and ILGPU could pick them and fail at the first kernel.
/// </summary>
public sealed class OpenClCheck : FileCheck
{
    public const string VendorsDir = "/etc/OpenCL/vendors";

    public override string Id => "opencl.icd";

    public override string Title => "OpenCL ICD";

    public enum IcdKind
    {
        AmdRocm,
        Pocl,
        Mesa,
        Nvidia,
        Intel,
        Other,
    }

    public static IcdKind Classify(string library)
    {
        string lib = library.ToLowerInvariant();
        return lib switch
        {
            _ when lib.Contains("amdocl", StringComparison.Ordinal) => IcdKind.AmdRocm,
            _ when lib.Contains("pocl", StringComparison.Ordinal) => IcdKind.Pocl,
            _ when lib.Contains("mesa", StringComparison.Ordinal) || lib.Contains("rusticl", StringComparison.Ordinal) => IcdKind.Mesa,
            _ when lib.Contains("nvidia", StringComparison.Ordinal) => IcdKind.Nvidia,
            _ when lib.Contains("igdrcl", StringComparison.Ordinal) || lib.Contains("intel", StringComparison.Ordinal) => IcdKind.Intel,
            _ => IcdKind.Other,
        };
    }

    protected override CheckResult Run(DoctorContext context)
    {
        var icds = new List<(string File, string Library, IcdKind Kind)>();
        foreach (string file in context.Root.List(VendorsDir, "*.icd"))
        {
            string library = (context.Root.ReadValue(file) ?? "").Split('\n')[0].Trim();
            icds.Add((file, library, Classify(library)));
        }

        bool strixHalo = context.Machine.HasStrixHalo;
        string listed = string.Join(", ", icds.Select(i => $"{Path.GetFileName(i.File)} ({i.Library})"));
        if (icds.Any(i => i.Kind == IcdKind.AmdRocm))
        {
            return Ok($"AMD ROCm OpenCL: {listed}");
        }

        if (icds.Count == 0)
        {
            if (!context.Machine.HasAmdGpu)
            {
                return Skip($"no OpenCL ICD in {VendorsDir}; not needed without a GPU (CPU backend)");
            }

            const string install = "install ROCm's OpenCL runtime: sudo halo provision (rocm-opencl-runtime / rocm-opencl)";
            return strixHalo
                ? Fail($"no OpenCL ICD in {VendorsDir}: ILGPU cannot reach the GPU", install)
                : Warn($"no OpenCL ICD in {VendorsDir}", install);
        }

        if (icds.All(i => i.Kind is IcdKind.Pocl or IcdKind.Mesa))
        {
            return Warn($"only {listed}: PoCL and Mesa lack the OpenCL 2.0 generic address space ILGPU's kernels need",
                "install ROCm's OpenCL runtime (sudo halo provision); remove pocl-opencl-icd / mesa-opencl-icd if ILGPU picks them");
        }

        return strixHalo
            ? Warn($"no AMD ROCm ICD ({listed}): ILGPU cannot drive gfx1151 through these", "install ROCm's OpenCL runtime: sudo halo provision")
            : Ok($"OpenCL ICDs: {listed}");
    }
}
