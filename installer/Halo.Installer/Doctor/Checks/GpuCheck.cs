namespace Halo.Installer.Doctor.Checks;

/// <summary>
/// `gpu.present`: the Strix Halo iGPU as KFD (compute) sees it - a topology node with gfx_target_version
/// 110501 and /dev/kfd - and as DRM sees it (vendor 0x1002, device 0x1586). No AMD GPU at all is a
/// warning, since Halo then serves on the CPU backend; hardware that is there but not usable is a failure.
/// </summary>
public sealed class GpuCheck : FileCheck
{
    public override string Id => "gpu.present";

    public override string Title => "GPU (Strix Halo gfx1151)";

    protected override CheckResult Run(DoctorContext context)
    {
        Machine machine = context.Machine;
        GpuInfo? kfd = machine.KfdNodes.FirstOrDefault(g => g.IsStrixHalo);
        GpuInfo? drm = machine.DrmDevices.FirstOrDefault(g => g.IsStrixHalo);
        bool devKfd = context.Root.Exists("/dev/kfd");

        if (kfd is not null && devKfd)
        {
            string pci = drm is not null ? $", DRM {drm.Vendor}:{drm.Device}" : ", no DRM card listed";
            return Ok($"gfx1151 (KFD {Path.GetFileName(kfd.Source)}{pci}), /dev/kfd present");
        }

        if (kfd is not null)
        {
            return Fail("gfx1151 in the KFD topology but /dev/kfd is missing", "load amdgpu and check udev: ls -l /dev/kfd; dmesg | grep -i kfd");
        }

        if (drm is not null)
        {
            return Fail($"Strix Halo iGPU at {drm.Source} ({drm.Vendor}:{drm.Device}) but no gfx1151 KFD node: compute is not available",
                "kernel too old or amdgpu compute disabled: upgrade to Linux >= 6.18.4, check dmesg | grep -i -e kfd -e amdgpu");
        }

        if (machine.KfdNodes.Count > 0)
        {
            GpuInfo other = machine.KfdNodes[0];
            return Warn($"AMD {other.GfxName} found, not gfx1151: Halo is built and tested for Strix Halo",
                "it may work through OpenCL; otherwise serve with --backend cpu");
        }

        if (machine.DrmDevices.Count > 0)
        {
            GpuInfo other = machine.DrmDevices[0];
            return Warn($"AMD GPU {other.Vendor}:{other.Device} without a KFD compute node", "Halo will use the CPU backend; load amdgpu with compute support for GPU serving");
        }

        return Warn("no AMD GPU (no KFD GPU node, no 0x1002 DRM device): Halo will serve on the CPU backend",
            "CPU-only serving works, slower; on a Strix Halo box enable the iGPU in firmware setup and load amdgpu (lsmod | grep amdgpu)");
    }
}
