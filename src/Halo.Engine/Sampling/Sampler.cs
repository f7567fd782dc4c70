using System.Security.Cryptography;

namespace Halo.Engine.Sampling;

/// <summary>
/// Picks the next token from logits in llama.cpp's order: repetition / presence / frequency penalties over the
/// last <see cref="SamplingParams.PenaltyLastN"/> accepted tokens, then greedy (temperature 0) or top-k,
/// top-p, min-p, temperature and a draw from a seeded xoshiro256** generator. All buffers are allocated once
/// for the vocabulary: sampling allocates nothing per token. One sampler per sequence; not thread-safe.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingParams _p;
    private readonly int _vocab;
    private readonly float[] _logits;     // (vocab) penalised logits
    private readonly int[] _ids;          // (vocab) candidate ids
    private readonly float[] _values;     // (vocab) candidate logits, then probabilities
    private readonly int[] _counts;       // (vocab) occurrences in the penalty window
    private readonly int[] _window;       // (PenaltyLastN) ring of accepted tokens
    private int _windowCount;
    private int _windowNext;
    private ulong _s0, _s1, _s2, _s3;

    public Sampler(int vocabSize, SamplingParams parameters)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        ArgumentNullException.ThrowIfNull(parameters);
        Validate(parameters);
        _p = parameters;
        _vocab = vocabSize;
        _logits = new float[vocabSize];
        _ids = new int[vocabSize];
        _values = new float[vocabSize];
        _counts = new int[vocabSize];
        _window = new int[Math.Max(0, parameters.PenaltyLastN)];
        Seed(parameters.Seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)));
    }

    public SamplingParams Parameters => _p;

    /// <summary>Checks that every parameter is in range; throws <see cref="ArgumentException"/> naming the first bad one.</summary>
    public static void Validate(SamplingParams p)
    {
        if (!(p.Temperature >= 0) || float.IsInfinity(p.Temperature))
        {
            throw new ArgumentException($"temperature must be >= 0, is {p.Temperature}");
        }

        if (p.TopK < 0)
        {
            throw new ArgumentException($"top_k must be >= 0, is {p.TopK}");
        }

        if (!(p.TopP > 0 && p.TopP <= 1))
        {
            throw new ArgumentException($"top_p must be in (0, 1], is {p.TopP}");
        }

        if (!(p.MinP >= 0 && p.MinP <= 1))
        {
            throw new ArgumentException($"min_p must be in [0, 1], is {p.MinP}");
        }

        if (!(p.RepetitionPenalty > 0) || float.IsInfinity(p.RepetitionPenalty))
        {
            throw new ArgumentException($"repetition penalty must be > 0, is {p.RepetitionPenalty}");
        }

        if (!float.IsFinite(p.PresencePenalty) || !float.IsFinite(p.FrequencyPenalty))
        {
            throw new ArgumentException("presence and frequency penalties must be finite");
        }

        if (p.PenaltyLastN < 0)
        {
            throw new ArgumentException($"penalty window must be >= 0, is {p.PenaltyLastN}");
        }
    }

    /// <summary>Records a token of the sequence (prompt or generated) for the penalties.</summary>
    public void Accept(int token)
    {
        if (_window.Length == 0 || (uint)token >= (uint)_vocab)
        {
            return;
        }

        if (_windowCount == _window.Length)
        {
            _counts[_window[_windowNext]]--;
        }
        else
        {
            _windowCount++;
        }

        _window[_windowNext] = token;
        _counts[token]++;
        _windowNext = (_windowNext + 1) % _window.Length;
    }

    /// <summary>Forgets the penalty window (a new sequence).</summary>
    public void Reset()
    {
        for (int i = 0; i < _windowCount; i++)
        {
            _counts[_window[i]] = 0;
        }

        _windowCount = 0;
        _windowNext = 0;
    }

    /// <summary>Chooses the next token from <paramref name="logits"/> [vocab]. Does not <see cref="Accept"/> it.</summary>
    public int Sample(ReadOnlySpan<float> logits)
    {
        if (logits.Length < _vocab)
        {
            throw new ArgumentException($"logits has {logits.Length} entries, the vocabulary {_vocab}");
        }

        // The penalties change a copy; without them (the default) the candidates are read from the caller's logits,
        // which spares a copy of the whole vocabulary per token.
        ReadOnlySpan<float> scores = logits[.._vocab];
        if (HasPenalties)
        {
            scores.CopyTo(_logits);
            ApplyPenalties();
            scores = _logits;
        }

        if (_p.Temperature <= 0f)
        {
            return ArgMax(scores);
        }

        int n = TopK(scores);
        n = TopP(n);
        n = MinP(n);
        return Draw(n);
    }

    private bool HasPenalties =>
        _windowCount > 0 && (_p.RepetitionPenalty != 1f || _p.PresencePenalty != 0f || _p.FrequencyPenalty != 0f);

    private void ApplyPenalties()
    {
        bool repetition = _p.RepetitionPenalty != 1f;

        // Each distinct token of the window once: a token's count is consumed by the first visit.
        for (int i = 0; i < _windowCount; i++)
        {
            int token = _window[i];
            int count = _counts[token];
            if (count <= 0)
            {
                continue;
            }

            float l = _logits[token];
            if (repetition)
            {
                l = l > 0 ? l / _p.RepetitionPenalty : l * _p.RepetitionPenalty;
            }

            _logits[token] = l - count * _p.FrequencyPenalty - _p.PresencePenalty;
            _counts[token] = -count;
        }

        for (int i = 0; i < _windowCount; i++)
        {
            int token = _window[i];
            if (_counts[token] < 0)
            {
                _counts[token] = -_counts[token];
            }
        }
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>Candidates sorted by logit, descending: the top k (all when k is 0).</summary>
    private int TopK(ReadOnlySpan<float> scores)
    {
        int k = _p.TopK > 0 ? Math.Min(_p.TopK, _vocab) : _vocab;
        if (k < _vocab)
        {
            // Keep the k best in _ids/_values with a min-heap at the front, then sort those k.
            int i = 0;
            for (; i < k; i++)
            {
                _values[i] = scores[i];
                _ids[i] = i;
                SiftUp(i);
            }

            // Only a logit above the heap's minimum enters: the runs that may hold one, in order.
            for (int count; i < _vocab; i += count)
            {
                i = ThresholdScan.Next(scores, i, _values[0], out count);
                OfferEach(scores, i, count, k);
            }
        }
        else
        {
            for (int i = 0; i < _vocab; i++)
            {
                _ids[i] = i;
                _values[i] = scores[i];
            }
        }

        Array.Sort(_values, _ids, 0, k);
        Array.Reverse(_values, 0, k);
        Array.Reverse(_ids, 0, k);
        return k;
    }

    /// <summary>Offers logits [<paramref name="start"/>, + <paramref name="count"/>) to the heap, in order.</summary>
    private void OfferEach(ReadOnlySpan<float> scores, int start, int count, int k)
    {
        for (int j = start; j < start + count; j++)
        {
            Offer(scores[j], j, k);
        }
    }

    /// <summary>Puts logit <paramref name="l"/> of token <paramref name="i"/> in the full heap of size <paramref name="k"/> if it beats the minimum.</summary>
    private void Offer(float l, int i, int k)
    {
        if (l > _values[0])
        {
            _values[0] = l;
            _ids[0] = i;
            SiftDown(0, k);
        }
    }

    private void SiftUp(int i)
    {
        while (i > 0)
        {
            int parent = (i - 1) / 2;
            if (_values[parent] <= _values[i])
            {
                break;
            }

            Swap(i, parent);
            i = parent;
        }
    }

    private void SiftDown(int i, int size)
    {
        while (true)
        {
            int smallest = i, l = 2 * i + 1, r = l + 1;
            if (l < size && _values[l] < _values[smallest])
            {
                smallest = l;
            }

            if (r < size && _values[r] < _values[smallest])
            {
                smallest = r;
            }

            if (smallest == i)
            {
                return;
            }

            Swap(i, smallest);
            i = smallest;
        }
    }

    private void Swap(int a, int b)
    {
        (_values[a], _values[b]) = (_values[b], _values[a]);
        (_ids[a], _ids[b]) = (_ids[b], _ids[a]);
    }

    /// <summary>Keeps the smallest prefix whose softmax mass (temperature 1) reaches top_p.</summary>
    private int TopP(int n)
    {
        if (_p.TopP >= 1f)
        {
            return n;
        }

        double sum = 0;
        float max = _values[0];
        for (int i = 0; i < n; i++)
        {
            sum += Math.Exp(_values[i] - max);
        }

        double cumulative = 0;
        for (int i = 0; i < n; i++)
        {
            cumulative += Math.Exp(_values[i] - max) / sum;
            if (cumulative >= _p.TopP)
            {
                return i + 1;
            }
        }

        return n;
    }

    /// <summary>Keeps candidates whose probability is at least min_p times the best one's.</summary>
    private int MinP(int n)
    {
        if (_p.MinP <= 0f)
        {
            return n;
        }

        float threshold = _values[0] + MathF.Log(_p.MinP);
        int kept = 1;
        while (kept < n && _values[kept] >= threshold)
        {
            kept++;
        }

        return kept;
    }

    /// <summary>Softmax of the n candidates at the temperature, then one draw.</summary>
    private int Draw(int n)
    {
        float max = _values[0];
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            float p = MathF.Exp((_values[i] - max) / _p.Temperature);
            _values[i] = p;
            sum += p;
        }

        double r = NextDouble() * sum;
        double cumulative = 0;
        for (int i = 0; i < n; i++)
        {
            cumulative += _values[i];
            if (r < cumulative)
            {
                return _ids[i];
            }
        }

        return _ids[n - 1];
    }

    private void Seed(ulong seed)
    {
        _s0 = SplitMix(ref seed);
        _s1 = SplitMix(ref seed);
        _s2 = SplitMix(ref seed);
        _s3 = SplitMix(ref seed);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A uniform double in [0, 1) from xoshiro256**.</summary>
    private double NextDouble()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return (result >> 11) * (1.0 / (1UL << 53));
    }
}
