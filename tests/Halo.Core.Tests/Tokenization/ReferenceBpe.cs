using System.Text;
using Halo.Core.Tokenization;

namespace Halo.Core.Tests.Tokenization;

/// <summary>
/// The textbook BPE, written for clarity and not speed: symbols are strings, and each step scans every
/// adjacent pair for the lowest merge rank (leftmost on ties). The tokenizer's heap-based merge must agree.
/// </summary>
internal static class ReferenceBpe
{
    private static readonly Dictionary<TokenizerModel, Dictionary<string, int>> RanksByModel = [];

    public static int[] EncodeWord(TokenizerModel model, string word)
    {
        Dictionary<string, int> ranks;
        lock (RanksByModel)
        {
            if (!RanksByModel.TryGetValue(model, out ranks!))
            {
                ranks = new Dictionary<string, int>(StringComparer.Ordinal);
                for (var rank = 0; rank < model.Merges.Count; rank++)
                {
                    ranks.TryAdd(model.Merges[rank], rank);
                }

                RanksByModel[model] = ranks;
            }
        }

        var symbols = new List<string>();
        foreach (var b in Encoding.UTF8.GetBytes(word))
        {
            symbols.Add(ByteLevelAlphabet.ByteToChar[b].ToString());
        }

        while (true)
        {
            var best = -1;
            var bestRank = int.MaxValue;
            for (var i = 0; i + 1 < symbols.Count; i++)
            {
                if (ranks.TryGetValue(symbols[i] + " " + symbols[i + 1], out var rank) && rank < bestRank)
                {
                    best = i;
                    bestRank = rank;
                }
            }

            if (best < 0)
            {
                break;
            }

            symbols[best] += symbols[best + 1];
            symbols.RemoveAt(best + 1);
        }

        var ids = new int[symbols.Count];
        for (var i = 0; i < symbols.Count; i++)
        {
            ids[i] = IndexOf(model.Tokens, symbols[i]);
        }

        return ids;
    }

    private static int IndexOf(IReadOnlyList<string> tokens, string text)
    {
        for (var id = 0; id < tokens.Count; id++)
        {
            if (tokens[id] == text)
            {
                return id;
            }
        }

        throw new InvalidOperationException($"'{text}' is not a token");
    }
}
