using ILGPU;
using ILGPU.Backends.OpenCL;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Halo.Kernels;

/// <summary>
/// Finds the GPUs ILGPU can drive and opens the preferred one: CUDA first, then OpenCL GPUs that provide what
/// ILGPU's OpenCL backend needs (OpenCL C 2.0+ and the generic address space; the OpenCL kernels exchange lane
/// values through shared memory, so subgroup extensions are not required).
/// Devices that fall short are skipped with one log line each, never a crash: Debian's PoCL 3.1 (a CPU
/// device without the generic address space) and Mesa's OpenCL are typical. ILGPU's CPU accelerator is never
/// picked here; it exists for the tests.
/// </summary>
public static partial class GpuDevices
{
    /// <summary>One device found by <see cref="Probe"/>: usable, or the reason it is skipped.</summary>
    public sealed record Candidate(string Api, string Name, long MemoryBytes, int WarpSize, string? SkipReason)
    {
        public bool Usable => SkipReason is null;
    }

    /// <summary>Every CUDA and OpenCL device the drivers report, with the reason each unusable one is skipped.</summary>
    public static IReadOnlyList<Candidate> Probe(ILogger? logger = null)
    {
        var candidates = new List<Candidate>();
        if (MissingDriver() is { } missing)
        {
            candidates.Add(new Candidate("CUDA/OpenCL", "driver", 0, 0, missing));
            return candidates;
        }

        using Context? context = CreateContext(logger ?? NullLogger.Instance, candidates);
        if (context is null)
        {
            return candidates;
        }

        foreach (CudaDevice device in context.GetCudaDevices())
        {
            candidates.Add(new Candidate("CUDA", device.Name, device.MemorySize, device.WarpSize, GroupRejection(device)));
        }

        foreach (CLDevice device in context.GetCLDevices())
        {
            candidates.Add(new Candidate("OpenCL", device.Name, device.MemorySize, device.WarpSize, GroupRejection(device)));
        }

        return candidates;
    }

    /// <summary>
    /// Why no CUDA or OpenCL device can exist on this machine, or null when a driver may be there. Starting the
    /// runtimes (an ILGPU context loads libcuda and the OpenCL ICD loader and asks them) costs ~50-150 ms, which
    /// is most of a CPU-only daemon's start; these file checks cost microseconds. CUDA needs its device nodes
    /// (<c>/dev/nvidia*</c>, or <c>/dev/dxg</c> under WSL); OpenCL needs an ICD registered in
    /// <c>/etc/OpenCL/vendors</c> (ROCm, NVIDIA, PoCL all put one there) or named by the ICD loaders'
    /// environment variables.
    /// </summary>
    public static string? MissingDriver(string root = "/", Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string dev = Path.Combine(root, "dev");
        if (File.Exists(Path.Combine(dev, "dxg")) || (Directory.Exists(dev) && Directory.EnumerateFileSystemEntries(dev, "nvidia*").Any()))
        {
            return null;
        }

        foreach (string variable in (string[])["OCL_ICD_VENDORS", "OCL_ICD_FILENAMES", "OPENCL_VENDOR_PATH"])
        {
            if (!string.IsNullOrEmpty(environment(variable)))
            {
                return null;
            }
        }

        string vendors = Path.Combine(root, "etc", "OpenCL", "vendors");
        if (Directory.Exists(vendors) && Directory.EnumerateFiles(vendors, "*.icd").Any())
        {
            return null;
        }

        return "no GPU driver found (no /dev/nvidia* device for CUDA, no OpenCL ICD in /etc/OpenCL/vendors)";
    }

    /// <summary>
    /// Why ILGPU's OpenCL backend cannot run the kernels on a device, or null when it can. A pure function of the
    /// device's reported properties, so the rules are tested without a driver.
    /// </summary>
    public static string? OpenClRejection(bool isGpu, int openClCMajor, int openClCMinor, bool genericAddressSpace)
    {
        if (!isGpu)
        {
            return "is not a GPU (an OpenCL CPU device such as PoCL is slower than Halo's CPU SIMD backend)";
        }

        if (openClCMajor < 2)
        {
            return $"supports OpenCL C {openClCMajor}.{openClCMinor}; ILGPU's OpenCL backend needs 2.0 or later";
        }

        if (!genericAddressSpace)
        {
            return "lacks the OpenCL generic address space ILGPU's OpenCL backend needs (AMD's ROCm OpenCL has it; PoCL 3.x and Mesa do not)";
        }

        return null;
    }

    /// <summary>
    /// CUDA kernels shuffle within hardware warps and need a power-of-two warp of at least 8 lanes; OpenCL kernels
    /// use logical 32-lane warps and need groups of at least 32 threads.
    /// </summary>
    internal static string? GroupRejection(Device device)
    {
        if (device is CLDevice)
        {
            return device.MaxNumThreadsPerGroup >= 32 ? null : $"allows {device.MaxNumThreadsPerGroup} threads per group; the kernels need 32";
        }

        int warp = device.WarpSize;
        if (warp < 8 || (warp & (warp - 1)) != 0)
        {
            return $"has a warp (subgroup) size of {warp}; the kernels need a power of two of at least 8";
        }

        if (warp > device.MaxNumThreadsPerGroup)
        {
            return $"allows {device.MaxNumThreadsPerGroup} threads per group, less than its warp of {warp}";
        }

        return null;
    }

    /// <summary>Opens the best usable device, or throws <see cref="GpuUnavailableException"/> listing why each was skipped.</summary>
    internal static Selection Open(ILogger? logger)
    {
        ILogger log = logger ?? NullLogger.Instance;
        if (MissingDriver() is { } missing)
        {
            throw new GpuUnavailableException(missing);
        }

        var skipped = new List<Candidate>();
        Context? context = CreateContext(log, skipped);
        if (context is null)
        {
            throw new GpuUnavailableException(Describe(skipped, "the GPU runtimes failed to start"));
        }

        // CUDA before OpenCL; within an API the device with the most memory first
        var cuda = new List<Device>();
        foreach (CudaDevice device in context.GetCudaDevices())
        {
            cuda.Add(device);
        }

        var openCl = new List<Device>();
        foreach (CLDevice device in context.GetCLDevices())
        {
            openCl.Add(device);
        }

        cuda.Sort((a, b) => b.MemorySize.CompareTo(a.MemorySize));
        openCl.Sort((a, b) => b.MemorySize.CompareTo(a.MemorySize));
        var order = new List<Device>(cuda);
        order.AddRange(openCl);
        foreach (Device device in order)
        {
            string api = device is CudaDevice ? "CUDA" : "OpenCL";
            if (GroupRejection(device) is { } reason)
            {
                DeviceSkipped(log, api, device.Name, reason);
                skipped.Add(new Candidate(api, device.Name, device.MemorySize, device.WarpSize, reason));
                continue;
            }

            try
            {
                Accelerator accelerator = device.CreateAccelerator(context);
                DeviceSelected(log, api, device.Name, device.MemorySize / 1048576, device.WarpSize);
                return new Selection(context, accelerator, api);
            }
            catch (Exception e)
            {
                string failure = $"failed to start: {e.Message}";
                DeviceSkipped(log, api, device.Name, failure);
                skipped.Add(new Candidate(api, device.Name, device.MemorySize, device.WarpSize, failure));
            }
        }

        context.Dispose();
        throw new GpuUnavailableException(Describe(skipped, "no CUDA or OpenCL GPU found (is the driver installed?)"));
    }

    private static Context? CreateContext(ILogger log, List<Candidate> skipped)
    {
        try
        {
            return Context.Create(builder => builder
                .Cuda()
                .OpenCL(device => AcceptOpenCl(device, log, skipped))
                .EnableAlgorithms());
        }
        catch (Exception e)
        {
            // a broken driver install (library present, runtime failing) must not take the process down
            RuntimeFailed(log, e.Message);
            skipped.Add(new Candidate("CUDA/OpenCL", "runtime", 0, 0, e.Message));
            return null;
        }
    }

    private static bool AcceptOpenCl(CLDevice device, ILogger log, List<Candidate> skipped)
    {
        string? reason;
        try
        {
            reason = OpenClRejection(
                device.DeviceType.HasFlag(CLDeviceType.CL_DEVICE_TYPE_GPU),
                device.CLStdVersion.Major,
                device.CLStdVersion.Minor,
                device.Capabilities.GenericAddressSpace);
        }
        catch (Exception e)
        {
            reason = $"could not be queried: {e.Message}";
        }

        if (reason is not null)
        {
            DeviceSkipped(log, "OpenCL", device.Name, reason);
            skipped.Add(new Candidate("OpenCL", device.Name, device.MemorySize, device.WarpSize, reason));
            return false;
        }

        return true;
    }

    private static string Describe(List<Candidate> skipped, string fallback)
    {
        if (skipped.Count == 0)
        {
            return fallback;
        }

        var parts = new List<string>();
        foreach (Candidate c in skipped)
        {
            parts.Add($"{c.Api} {c.Name} {c.SkipReason}");
        }

        return "no usable GPU: " + string.Join("; ", parts);
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "GPU backend: using {Api} device {Device} ({MemoryMiB} MiB, warp {WarpSize})")]
    private static partial void DeviceSelected(ILogger logger, string api, string device, long memoryMiB, int warpSize);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "GPU backend: skipping {Api} device {Device}: {Reason}")]
    private static partial void DeviceSkipped(ILogger logger, string api, string device, string reason);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "GPU backend: the CUDA/OpenCL runtime failed to start: {Reason}")]
    private static partial void RuntimeFailed(ILogger logger, string reason);

    /// <summary>An open device: its context and accelerator, disposed together with the backend.</summary>
    internal sealed class Selection(Context context, Accelerator accelerator, string api) : IDisposable
    {
        public Context Context { get; } = context;

        public Accelerator Accelerator { get; } = accelerator;

        public string Api { get; } = api;

        public void Dispose()
        {
            Accelerator.Dispose();
            Context.Dispose();
        }
    }
}
