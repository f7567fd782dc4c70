using System.Reflection;
using Halo.Kernels.Kernels;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Halo.Kernels.Tests.Kernels;

/// <summary>
/// Compiles every kernel with ILGPU's real GPU code generators, no device needed: PTX for NVIDIA (sm_80) with
/// warp shuffles, and OpenCL C for an AMD device (what ROCm reports on Strix Halo) with the shared-memory lane
/// exchange. The CPU accelerator runs the kernels as .NET code and accepts constructs the GPU backends reject
/// (this test is how we found that ILGPU 1.5.3 emits OpenCL subgroup shuffles only for Intel devices). It
/// proves the kernels compile, not that they run: that needs the CUDA tests on a real device.
/// </summary>
public sealed class KernelCompilationTests : IDisposable
{
    private readonly Context _context = Context.Create(builder => builder.EnableAlgorithms());

    public static TheoryData<string> Kernels()
    {
        var data = new TheoryData<string>();
        foreach (MethodInfo kernel in AllKernels())
        {
            data.Add($"{kernel.DeclaringType!.Name}.{kernel.Name}");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Compile_ForCudaSm80_ProducesPtx(string kernel)
    {
        var backend = new PTXBackend(_context, new CudaCapabilityContext(CudaArchitecture.SM_80), CudaArchitecture.SM_80, CudaInstructionSet.ISA_70, nvvmAPI: null);
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(Find(kernel, typeof(ShuffleLanes))), default);

        Assert.Contains(".entry", compiled.PTXAssembly);
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Compile_ForOpenClAmd_ProducesOpenClC(string kernel)
    {
        var capabilities = new CLCapabilityContext(float16: true, float64: true, int64_Atomics: true, genericAddressSpace: true, subGroups: true);
        var backend = new CLBackend(_context, capabilities, CLDeviceVendor.AMD, CLCVersion.CL20);
        var compiled = (CLCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(Find(kernel, typeof(SharedMemoryLanes))), default);

        Assert.Contains("kernel", compiled.Source);
    }

    [Fact]
    public void AllKernels_CoversEveryKernelSetLaunch()
    {
        // 14 launches in KernelSet: one kernel each, AttentionDecode and TopK have two
        Assert.Equal(14, AllKernels().Count());
    }

    private static IEnumerable<MethodInfo> AllKernels()
    {
        Type[] types =
        [
            typeof(NormQuantize), typeof(TernaryMatMul), typeof(RmsNorm), typeof(Rope),
            typeof(AttentionPrefill), typeof(AttentionDecode),
            typeof(Embedding), typeof(GatherRows), typeof(LmHead), typeof(ArgMax), typeof(TopK), typeof(Sampling),
        ];
        foreach (Type type in types)
        {
            foreach (MethodInfo method in type.GetMethods(BindingFlags.Public | BindingFlags.Static))
            {
                ParameterInfo[] parameters = method.GetParameters();
                if (method.ReturnType == typeof(void) && parameters.Length > 0 && parameters[0].ParameterType.Name.StartsWith("ArrayView", StringComparison.Ordinal))
                {
                    yield return method;
                }
            }
        }
    }

    /// <summary>The kernel, instantiated with the lane exchange when it is generic over one.</summary>
    private static MethodInfo Find(string name, Type lanes)
    {
        MethodInfo method = AllKernels().Single(m => $"{m.DeclaringType!.Name}.{m.Name}" == name);
        return method.IsGenericMethodDefinition ? method.MakeGenericMethod(lanes) : method;
    }

    public void Dispose() => _context.Dispose();
}
