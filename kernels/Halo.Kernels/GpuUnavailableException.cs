namespace Halo.Kernels;

/// <summary>
/// No GPU can run this model: no CUDA or usable OpenCL device, a driver that fails to start, too little
/// device memory, or a model layout the GPU kernels do not read. The message says which, in one line;
/// <see cref="BackendSelector"/> falls back to the CPU backend on it in auto mode.
/// </summary>
public sealed class GpuUnavailableException : Exception
{
    public GpuUnavailableException(string message)
        : base(message)
    {
    }

    public GpuUnavailableException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
