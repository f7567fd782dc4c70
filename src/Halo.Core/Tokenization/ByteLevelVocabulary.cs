using System.Text;
using Halo.Core.Chat;

namespace Halo.Core.Tokenization;

/// <summary>
/// A small, complete byte-level vocabulary for synthetic models (tests, demo, benchmarks): the 256 byte
/// tokens in GPT-2's byte-to-unicode alphabet, numbered as LLaMA-3 numbers them (so ids 0..255 mean the
/// same bytes in both), optional merges, then LLaMA-3's chat specials with BOS/EOS/EOT set and a LLaMA-3
/// chat template. Any text encodes with it (byte by byte where no merge applies).
/// </summary>
public static class ByteLevelVocabulary
{
    public const string BeginOfText = "<|begin_of_text|>";
    public const string EndOfText = "<|end_of_text|>";
    public const string StartHeader = "<|start_header_id|>";
    public const string EndHeader = "<|end_header_id|>";
    public const string EndOfTurn = "<|eot_id|>";

    /// <summary>
    /// Builds the vocabulary. Each merge joins two pieces of plain text that are already tokens (single
    /// characters' bytes or earlier merges), e.g. ("t", "h"), ("th", "e"); the merged token follows the byte
    /// tokens in merge order, and the five specials come last.
    /// </summary>
    public static TokenizerModel Create(IReadOnlyList<(string Left, string Right)>? merges = null)
    {
        var tokens = new List<string>(256 + (merges?.Count ?? 0) + 5);
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var b in ByteLevelAlphabet.TokenOrder)
        {
            var token = ByteLevelAlphabet.ByteToChar[b].ToString();
            tokens.Add(token);
            known.Add(token);
        }

        var mergeLines = new List<string>(merges?.Count ?? 0);
        foreach (var (left, right) in merges ?? [])
        {
            var leftToken = ToByteLevel(left);
            var rightToken = ToByteLevel(right);
            if (!known.Contains(leftToken) || !known.Contains(rightToken))
            {
                throw new ArgumentException($"Merge ('{left}', '{right}') joins pieces that are not tokens yet; merge their parts first.", nameof(merges));
            }

            mergeLines.Add(leftToken + " " + rightToken);
            if (known.Add(leftToken + rightToken))
            {
                tokens.Add(leftToken + rightToken);
            }
        }

        var firstSpecial = tokens.Count;
        tokens.AddRange([BeginOfText, EndOfText, StartHeader, EndHeader, EndOfTurn]);
        var types = new int[tokens.Count];
        Array.Fill(types, (int)TokenType.Normal, 0, firstSpecial);
        Array.Fill(types, (int)TokenType.Control, firstSpecial, tokens.Count - firstSpecial);
        return new TokenizerModel
        {
            Model = "gpt2",
            PreTokenizer = "llama-bpe",
            Tokens = tokens.ToArray(),
            Merges = mergeLines.ToArray(),
            TokenTypes = types,
            BosId = firstSpecial,
            EosId = firstSpecial + 1,
            EotId = firstSpecial + 4,
            AddBos = true,
            ChatTemplate = ChatTemplate.Llama3TemplateText,
        };
    }

    private static string ToByteLevel(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = ByteLevelAlphabet.ByteToChar[bytes[i]];
        }

        return new string(chars);
    }
}
