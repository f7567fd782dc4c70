namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

/// <summary>
/// Tests that flip the kernels' process-wide path switches (UseGfni, UseVector512, ...) run alone, after the
/// parallel tests, so a backend test never sees a path change under it mid-run.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelSwitchesCollection
{
    public const string Name = "kernel path switches";
}
