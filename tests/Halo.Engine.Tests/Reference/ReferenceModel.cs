using Halo.Core.Formats;
using Halo.Core.Models;
using Halo.Engine.Backends;
using Halo.Engine.Weights;

namespace Halo.Engine.Tests.Reference;

/// <summary>
/// The BitNet b1.58 forward pass of DESIGN.md section 2 in plain loops and double precision, read straight
/// from the GGUF tensors (no repacking): the yardstick for the SIMD backend, op by op and end to end.
/// Only the int8 activation quantization (whose rounding defines the numerics), the F16 roundings of
/// llama.cpp mode and the BF16 rounding of Halo mode's KV cache are done in float.
/// </summary>
internal sealed unsafe class ReferenceModel
{
    private readonly IModelSource _m;
    private readonly ModelConfig _c;
    private readonly ActivationScaling _scaling;
    private readonly bool _llamaCpp;
    private readonly Activation _activation;
    private readonly List<double[][]> _keys = [];   // [layer][position][kvDim]
    private readonly List<double[][]> _values = [];

    public ReferenceModel(IModelSource model, ActivationScaling scaling, bool llamaCppNumerics, Activation? activation = null)
    {
        _m = model;
        _c = model.Config;
        _scaling = scaling;
        _llamaCpp = llamaCppNumerics;
        _activation = activation ?? _c.Activation;
        for (int l = 0; l < _c.LayerCount; l++)
        {
            _keys.Add(new double[_c.ContextLength][]);
            _values.Add(new double[_c.ContextLength][]);
        }
    }

    public int Position { get; private set; }

    /// <summary>Runs one token at the next position and returns the logits [vocab].</summary>
    public double[] Step(int token)
    {
        int d = _c.HiddenSize, hd = _c.HeadDim;
        double[] x = Row(_m.GetTensor("token_embd.weight"), token);
        for (int l = 0; l < _c.LayerCount; l++)
        {
            string p = $"blk.{l}.";
            double[] h = Mul(RmsNorm(x), Vector(p + "attn_norm.weight"));
            double[] q = MatVec(p + "attn_q", h), k = MatVec(p + "attn_k", h), v = MatVec(p + "attn_v", h);
            Rope(q, _c.HeadCount);
            Rope(k, _c.KvHeadCount);
            if (_llamaCpp)
            {
                RoundHalf(k);
                RoundHalf(v);
                RoundHalf(q);
            }
            else
            {
                // Halo numerics keep the KV cache in BF16.
                RoundBFloat16(k);
                RoundBFloat16(v);
            }

            _keys[l][Position] = k;
            _values[l][Position] = v;
            var a = new double[q.Length];
            int group = _c.HeadCount / _c.KvHeadCount;
            for (int head = 0; head < _c.HeadCount; head++)
            {
                int kvHead = head / group;
                var scores = new double[Position + 1];
                double max = double.NegativeInfinity;
                for (int t = 0; t <= Position; t++)
                {
                    double s = 0;
                    for (int i = 0; i < hd; i++)
                    {
                        s += q[head * hd + i] * _keys[l][t][kvHead * hd + i];
                    }

                    scores[t] = s / Math.Sqrt(hd);
                    max = Math.Max(max, scores[t]);
                }

                double sum = 0;
                for (int t = 0; t <= Position; t++)
                {
                    scores[t] = Math.Exp(scores[t] - max);
                    sum += scores[t];
                }

                for (int t = 0; t <= Position; t++)
                {
                    double weight = scores[t] / sum;
                    if (_llamaCpp)
                    {
                        weight = (double)(Half)(float)weight;
                    }

                    for (int i = 0; i < hd; i++)
                    {
                        a[head * hd + i] += weight * _values[l][t][kvHead * hd + i];
                    }
                }
            }

            double[] o = MatVec(p + "attn_output", Mul(RmsNorm(a), Vector(p + "attn_sub_norm.weight")));
            Add(x, o);
            h = Mul(RmsNorm(x), Vector(p + "ffn_norm.weight"));
            double[] g = MatVec(p + "ffn_gate", h), u = MatVec(p + "ffn_up", h);
            for (int i = 0; i < g.Length; i++)
            {
                double act = _activation == Activation.Silu ? g[i] / (1 + Math.Exp(-g[i])) : Math.Pow(Math.Max(g[i], 0), 2);
                g[i] = act * u[i];
            }

            Add(x, MatVec(p + "ffn_down", Mul(RmsNorm(g), Vector(p + "ffn_sub_norm.weight"))));
        }

        double[] final = Mul(RmsNorm(x), Vector("output_norm.weight"));
        if (_llamaCpp)
        {
            RoundHalf(final);
        }

        TensorView head0 = _m.TryGetTensor("output.weight", out TensorView o2) ? o2 : _m.GetTensor("token_embd.weight");
        var logits = new double[_c.VocabSize];
        for (int r = 0; r < _c.VocabSize; r++)
        {
            double[] e = Row(head0, r);
            double s = 0;
            for (int i = 0; i < d; i++)
            {
                s += e[i] * final[i];
            }

            logits[r] = s;
        }

        Position++;
        return logits;
    }

    /// <summary>The int8 quantization of x as the backend defines it: q [n] and a scale per 256-block.</summary>
    public static (sbyte[] Q, float[] D) Quantize(float[] x, ActivationScaling scaling)
    {
        var q = new sbyte[x.Length];
        var d = new float[x.Length / 256];
        if (scaling == ActivationScaling.PerToken)
        {
            float amax = 0;
            foreach (float v in x)
            {
                amax = Math.Max(amax, Math.Abs(v));
            }

            float s = 127f / Math.Max(amax, 1e-5f);
            for (int i = 0; i < x.Length; i++)
            {
                q[i] = (sbyte)Math.Clamp(Math.Round(x[i] * s, MidpointRounding.ToEven), -128, 127);
            }

            Array.Fill(d, 1f / s);
            return (q, d);
        }

        for (int b = 0; b < d.Length; b++)
        {
            float amax = 0, max = 0;
            for (int j = 0; j < 256; j++)
            {
                if (Math.Abs(x[b * 256 + j]) > amax)
                {
                    amax = Math.Abs(x[b * 256 + j]);
                    max = x[b * 256 + j];
                }
            }

            if (amax == 0)
            {
                continue;
            }

            float iscale = -127f / max;
            for (int j = 0; j < 256; j++)
            {
                q[b * 256 + j] = (sbyte)Math.Min(127, Math.Round(iscale * x[b * 256 + j], MidpointRounding.ToEven));
            }

            d[b] = 1f / iscale;
        }

        return (q, d);
    }

    /// <summary>Ternary value and block scale of w[row, col] decoded from the GGUF bytes (ggml's dequantize_row_tq*).</summary>
    public static (int Value, float Scale) Weight(TensorView w, int row, int col)
    {
        int cols = (int)w.Shape[0];
        long block = ((long)row * cols + col) / 256;
        int e = col % 256;
        if (w.Type == GgmlType.TQ2_0)
        {
            byte* b = w.Data + block * 66;
            int half = e / 128, l = e % 128 / 32, m = e % 32;
            return (((b[half * 32 + m] >> (2 * l)) & 3) - 1, (float)*(Half*)(b + 64));
        }

        if (w.Type == GgmlType.TQ1_0)
        {
            byte* b = w.Data + block * 54;
            byte q;
            int n;
            if (e < 160)
            {
                (q, n) = (b[e % 32], e / 32);
            }
            else if (e < 240)
            {
                (q, n) = (b[32 + (e - 160) % 16], (e - 160) / 16);
            }
            else
            {
                (q, n) = (b[48 + (e - 240) % 4], (e - 240) / 4);
            }

            int pow = 1;
            for (int i = 0; i < n; i++)
            {
                pow *= 3;
            }

            int shifted = (byte)(q * pow);
            return (((shifted * 3) >> 8) - 1, (float)*(Half*)(b + 52));
        }

        throw new NotSupportedException(w.Type.ToString());
    }

    private double[] MatVec(string prefix, double[] x)
    {
        TensorView w = _m.GetTensor(prefix + ".weight");
        double s = _m.TryGetTensor(prefix + ".scale", out TensorView st) ? *(float*)st.Data : 1.0;
        float[] xf = Array.ConvertAll(x, v => (float)v);
        (sbyte[] q, float[] d) = Quantize(xf, _scaling);
        int cols = (int)w.Shape[0], rows = (int)w.Shape[1];
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double acc = 0;
            for (int b = 0; b < cols / 256; b++)
            {
                long dot = 0;
                float scale = 0;
                for (int j = 0; j < 256; j++)
                {
                    (int value, float blockScale) = Weight(w, r, b * 256 + j);
                    dot += value * q[b * 256 + j];
                    scale = blockScale;
                }

                acc += (double)dot * scale * d[b];
            }

            y[r] = acc * s;
        }

        return y;
    }

    private void Rope(double[] x, int heads)
    {
        int hd = _c.HeadDim, half = hd / 2;
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = Position * Math.Pow(_c.RopeTheta, -2.0 * i / hd);
                double x0 = x[h * hd + i], x1 = x[h * hd + i + half];
                x[h * hd + i] = x0 * Math.Cos(angle) - x1 * Math.Sin(angle);
                x[h * hd + i + half] = x0 * Math.Sin(angle) + x1 * Math.Cos(angle);
            }
        }
    }

    private double[] RmsNorm(double[] x)
    {
        double sum = 0;
        foreach (double v in x)
        {
            sum += v * v;
        }

        double scale = 1 / Math.Sqrt(sum / x.Length + _c.RmsNormEps);
        return Array.ConvertAll(x, v => v * scale);
    }

    private double[] Vector(string name)
    {
        TensorView t = _m.GetTensor(name);
        var v = new double[t.ElementCount];
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = ((float*)t.Data)[i];
        }

        return v;
    }

    private static double[] Row(TensorView t, int row)
    {
        int cols = (int)t.Shape[0];
        var v = new double[cols];
        for (int i = 0; i < cols; i++)
        {
            v[i] = t.Type == GgmlType.F16 ? (double)((Half*)t.Data)[(long)row * cols + i] : ((float*)t.Data)[(long)row * cols + i];
        }

        return v;
    }

    private static double[] Mul(double[] a, double[] b)
    {
        var y = new double[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            y[i] = a[i] * b[i];
        }

        return y;
    }

    private static void Add(double[] x, double[] y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] += y[i];
        }
    }

    private static void RoundBFloat16(double[] x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = HalfBits.BFloat16ToSingle(HalfBits.SingleToBFloat16((float)x[i]));
        }
    }

    private static void RoundHalf(double[] x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (double)(Half)(float)x[i];
        }
    }
}
