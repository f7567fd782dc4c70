namespace Halo.Kernels.Tests.Kernels;

/// <summary>Causal GQA attention over a [slots, kvHeads, context, headDim] cache, in double: the reference for both attention kernels.</summary>
internal static class AttentionReference
{
    public static double[] Compute(float[] q, float[] keyCache, float[] valueCache, int[] slots, int[] positions, int heads, int kvHeads, int headDim, int context)
    {
        var output = new double[positions.Length * heads * headDim];
        double scale = 1.0 / Math.Sqrt(headDim);
        for (int t = 0; t < positions.Length; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                int kvHead = h / (heads / kvHeads);
                int cache = (slots[t] * kvHeads + kvHead) * context * headDim;
                int query = (t * heads + h) * headDim;
                var scores = new double[positions[t] + 1];
                double max = double.NegativeInfinity;
                for (int p = 0; p <= positions[t]; p++)
                {
                    double s = 0;
                    for (int d = 0; d < headDim; d++)
                    {
                        s += (double)q[query + d] * keyCache[cache + p * headDim + d];
                    }

                    scores[p] = s * scale;
                    max = Math.Max(max, scores[p]);
                }

                double sum = 0;
                for (int p = 0; p <= positions[t]; p++)
                {
                    scores[p] = Math.Exp(scores[p] - max);
                    sum += scores[p];
                }

                for (int d = 0; d < headDim; d++)
                {
                    double value = 0;
                    for (int p = 0; p <= positions[t]; p++)
                    {
                        value += scores[p] * valueCache[cache + p * headDim + d];
                    }

                    output[query + d] = value / sum;
                }
            }
        }

        return output;
    }
}
