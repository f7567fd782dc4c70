using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Halo.Kernels.Kernels;

/// <summary>
/// Draws the next token of each row from its sorted top-k candidates (<see cref="TopK"/>) in llama.cpp's
/// filter order: top-p (smallest prefix whose probability reaches p), min-p (probability at least
/// min-p times the best one), both on the untempered distribution, then temperature and a draw with the
/// caller's uniform number in [0, 1) (the host owns the seeded RNG, so runs are reproducible).
/// Temperature 0 is greedy. The work per row is at most 64 candidates: one lane does it.
/// </summary>
internal static class Sampling
{
    /// <param name="topValues">[rows, k] logits, largest first.</param>
    /// <param name="topIds">[rows, k] token ids (-1 = no candidate).</param>
    /// <param name="uniforms">[rows] uniform numbers in [0, 1).</param>
    /// <param name="tokens">[rows] the drawn token ids.</param>
    public static void Kernel(
        ArrayView<float> topValues,
        ArrayView<int> topIds,
        ArrayView<float> uniforms,
        ArrayView<int> tokens,
        int k,
        float temperature,
        float topP,
        float minP)
    {
        if (Group.IdxX != 0)
        {
            return;
        }

        int row = Grid.IdxX;
        long start = (long)row * k;
        float best = topValues[start];
        int count = 0;
        float total = 0f;
        while (count < k && topIds[start + count] >= 0)
        {
            total += XMath.Exp(topValues[start + count] - best);
            count++;
        }

        if (temperature <= 0f || count <= 1)
        {
            tokens[row] = topIds[start];
            return;
        }

        int keep = count;
        if (topP < 1f)
        {
            float cumulative = 0f;
            for (int i = 0; i < count; i++)
            {
                cumulative += XMath.Exp(topValues[start + i] - best) / total;
                if (cumulative >= topP)
                {
                    keep = i + 1;
                    break;
                }
            }
        }

        if (minP > 0f)
        {
            for (int i = 1; i < keep; i++)
            {
                if (XMath.Exp(topValues[start + i] - best) < minP)
                {
                    keep = i;
                    break;
                }
            }
        }

        float weightSum = 0f;
        for (int i = 0; i < keep; i++)
        {
            weightSum += XMath.Exp((topValues[start + i] - best) / temperature);
        }

        float target = uniforms[row] * weightSum;
        float running = 0f;
        int chosen = keep - 1;
        for (int i = 0; i < keep; i++)
        {
            running += XMath.Exp((topValues[start + i] - best) / temperature);
            if (running > target)
            {
                chosen = i;
                break;
            }
        }

        tokens[row] = topIds[start + chosen];
    }

    public static KernelConfig Config(int rows, int warpSize) => new(rows, warpSize);
}
