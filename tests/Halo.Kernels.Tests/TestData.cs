namespace Halo.Kernels.Tests;

/// <summary>Deterministic random inputs for the kernel tests.</summary>
internal static class TestData
{
    public static float[] Floats(int seed, int count, float scale = 1f)
    {
        var random = new Random(seed);
        var data = new float[count];
        for (int i = 0; i < count; i++)
        {
            data[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        }

        return data;
    }

    public static sbyte[] Ternary(int seed, int count)
    {
        var random = new Random(seed);
        var data = new sbyte[count];
        for (int i = 0; i < count; i++)
        {
            data[i] = (sbyte)(random.Next(3) - 1);
        }

        return data;
    }

    public static int[] Ints(int seed, int count, int maxExclusive)
    {
        var random = new Random(seed);
        var data = new int[count];
        for (int i = 0; i < count; i++)
        {
            data[i] = random.Next(maxExclusive);
        }

        return data;
    }

    /// <summary>Asserts |expected - actual| &lt;= tolerance * max(1, |expected|) element-wise, naming the first bad index.</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double allowed = tolerance * Math.Max(1.0, Math.Abs(expected[i]));
            if (!(Math.Abs(expected[i] - actual[i]) <= allowed))
            {
                Assert.Fail($"element {i}: expected {expected[i]}, got {actual[i]} (tolerance {allowed})");
            }
        }
    }

    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double tolerance)
    {
        var asFloat = new float[expected.Length];
        for (int i = 0; i < expected.Length; i++)
        {
            asFloat[i] = (float)expected[i];
        }

        AssertClose(asFloat, actual, tolerance);
    }
}
