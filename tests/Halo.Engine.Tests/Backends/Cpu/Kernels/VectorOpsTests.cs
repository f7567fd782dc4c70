using Halo.Core.Models;
using Halo.Engine.Backends.Cpu.Kernels;

namespace Halo.Engine.Tests.Backends.Cpu.Kernels;

public sealed unsafe class VectorOpsTests
{
    [Theory]
    [InlineData(37)]
    [InlineData(6912)]
    public void GatedActivation_Relu2_EqualsTheScalarFormulaBitForBit(int n)
    {
        // n = 37: two 16-lane steps and a scalar tail. Negative gates, zeros of both signs, large and tiny values.
        var rng = new Random(n);
        var gate = new float[n];
        var up = new float[n];
        for (int i = 0; i < n; i++)
        {
            gate[i] = (i % 7) switch
            {
                0 => -0f,
                1 => 0f,
                2 => -(float)rng.NextDouble() * 3,
                3 => (float)rng.NextDouble() * 1e-20f,
                _ => (float)(rng.NextDouble() * 200 - 100),
            };
            up[i] = (float)(rng.NextDouble() * 4 - 2);
        }

        var expected = new float[n];
        for (int i = 0; i < n; i++)
        {
            float r = MathF.Max(gate[i], 0f);
            expected[i] = r * r * up[i];
        }

        fixed (float* g = gate, u = up)
        {
            VectorOps.GatedActivation(g, u, n, Activation.Relu2);
        }

        for (int i = 0; i < n; i++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(gate[i]), $"element {i}: {gate[i]} vs {expected[i]}");
        }
    }
}
