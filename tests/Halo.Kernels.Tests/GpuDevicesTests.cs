using Halo.Testing;

namespace Halo.Kernels.Tests;

public sealed class GpuDevicesTests
{
    [Fact]
    public void OpenClRejection_PoclCpuDevice_SkippedAsNotAGpu()
    {
        string? reason = GpuDevices.OpenClRejection(isGpu: false, openClCMajor: 1, openClCMinor: 2, genericAddressSpace: false);

        Assert.NotNull(reason);
        Assert.Contains("not a GPU", reason);
    }

    [Fact]
    public void OpenClRejection_OpenCl12Gpu_NamesTheVersion()
    {
        string? reason = GpuDevices.OpenClRejection(isGpu: true, openClCMajor: 1, openClCMinor: 2, genericAddressSpace: false);

        Assert.Contains("OpenCL C 1.2", reason);
        Assert.Contains("2.0", reason);
    }

    [Fact]
    public void OpenClRejection_GpuWithoutGenericAddressSpace_NamesTheFeature()
    {
        // Mesa's rusticl reports OpenCL 3.0 with the generic address space optional and absent
        string? reason = GpuDevices.OpenClRejection(isGpu: true, openClCMajor: 3, openClCMinor: 0, genericAddressSpace: false);

        Assert.Contains("generic address space", reason);
    }

    [Fact]
    public void OpenClRejection_RocmLikeGpu_Accepted()
    {
        Assert.Null(GpuDevices.OpenClRejection(isGpu: true, openClCMajor: 2, openClCMinor: 0, genericAddressSpace: true));
    }

    [Fact]
    public void Probe_WhateverTheMachine_ReturnsWithoutThrowingAndGivesReasons()
    {
        IReadOnlyList<GpuDevices.Candidate> candidates = GpuDevices.Probe();

        Assert.All(candidates, c => Assert.True(c.Usable || !string.IsNullOrWhiteSpace(c.SkipReason)));
    }

    [Fact]
    public void MissingDriver_EmptyRoot_SaysWhyWithoutStartingARuntime()
    {
        using var root = new TempDir();
        Directory.CreateDirectory(Path.Combine(root.Path, "dev"));

        string? reason = GpuDevices.MissingDriver(root.Path, _ => null);

        Assert.NotNull(reason);
        Assert.Contains("/dev/nvidia", reason);
        Assert.Contains("/etc/OpenCL/vendors", reason);
    }

    [Theory]
    [InlineData("dev/nvidiactl")]
    [InlineData("dev/nvidia0")]
    [InlineData("dev/dxg")]
    [InlineData("etc/OpenCL/vendors/amdocl64.icd")]
    public void MissingDriver_DeviceNodeOrIcd_LetsTheProbeRun(string file)
    {
        using var root = new TempDir();
        string path = Path.Combine(root.Path, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "");

        Assert.Null(GpuDevices.MissingDriver(root.Path, _ => null));
    }

    [Fact]
    public void MissingDriver_IcdDirectoryWithoutIcdFiles_CountsAsNoDriver()
    {
        using var root = new TempDir();
        Directory.CreateDirectory(Path.Combine(root.Path, "etc/OpenCL/vendors"));
        File.WriteAllText(Path.Combine(root.Path, "etc/OpenCL/vendors/README"), "");

        Assert.NotNull(GpuDevices.MissingDriver(root.Path, _ => null));
    }

    [Fact]
    public void MissingDriver_IcdLoaderVariableSet_LetsTheProbeRun()
    {
        using var root = new TempDir();

        Assert.Null(GpuDevices.MissingDriver(root.Path, name => name == "OCL_ICD_VENDORS" ? "/opt/icds" : null));
    }
}
