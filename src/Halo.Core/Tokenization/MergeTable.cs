namespace Halo.Core.Tokenization;

/// <summary>
/// BPE merges as an open-addressing hash table keyed by a polynomial hash of the merge string "a b".
/// Loading hashes each merge string once and never looks its parts up in the vocabulary (that lookup, 560k
/// random probes into a 128k-entry dictionary, was most of the load time); instead the tokenizer composes
/// the hash of "a b" from the two tokens' own hashes when it asks about a pair, and the merge string is
/// compared to confirm, so a hash collision costs a probe, never a wrong merge.
/// The merged token's id is looked up the first time a merge fires and kept in its slot.
/// </summary>
internal sealed class MergeTable
{
    /// <summary>Merged id not looked up yet.</summary>
    public const int NotResolved = -2;

    private const ulong Fibonacci = 0x9E3779B97F4A7C15;

    private readonly IReadOnlyList<string> _merges;
    // Stored offset so that a fresh (zeroed) array needs no filling: rank + 1 (0 = empty slot), merged id + 2
    // (0 = NotResolved, 1 = the merged string is no token).
    private readonly ulong[] _hashes;
    private readonly int[] _ranksPlusOne;
    private readonly int[] _mergedIdsPlusTwo;
    private readonly int _shift;
    private readonly int _mask;

    /// <summary>Builds the table; a merge that is not "a b" throws <see cref="ArgumentException"/> naming it.</summary>
    public MergeTable(IReadOnlyList<string> merges)
    {
        _merges = merges;

        // Power of two at least 1.5 times the entries (LLaMA-3: 2^19 slots, 8 MB): short probe runs.
        var bits = 4;
        while ((1L << bits) < merges.Count * 3L / 2)
        {
            bits++;
        }

        _hashes = new ulong[1 << bits];
        _ranksPlusOne = new int[1 << bits];
        _mergedIdsPlusTwo = new int[1 << bits];
        _shift = 64 - bits;
        _mask = (1 << bits) - 1;

        // Hashing 280k strings is pure computation: spread it over the cores, then insert in rank order.
        var hashes = new ulong[merges.Count];
        var malformed = int.MaxValue;
        const int chunk = 16384;
        Parallel.For(0, (merges.Count + chunk - 1) / chunk, part =>
        {
            var end = Math.Min(merges.Count, (part + 1) * chunk);
            for (var rank = part * chunk; rank < end; rank++)
            {
                var merge = merges[rank].AsSpan();
                var space = SplitAt(merge);
                if (space <= 0 || space == merge.Length - 1)
                {
                    InterlockedMin(ref malformed, rank);
                    return;
                }

                hashes[rank] = PolynomialHash.Of(merge);
            }
        });

        if (malformed != int.MaxValue)
        {
            throw new ArgumentException($"Merge {malformed} ('{merges[malformed]}') is not two tokens separated by a space.", nameof(merges));
        }

        for (var rank = 0; rank < merges.Count; rank++)
        {
            Add(hashes[rank], rank);
        }
    }

    /// <summary>
    /// The rank of merging the tokens <paramref name="left"/> and <paramref name="right"/> (whose "a b" string
    /// hashes to <paramref name="hash"/>), or -1 if they do not merge.
    /// </summary>
    public int Find(ulong hash, ReadOnlySpan<char> left, ReadOnlySpan<char> right, out int slot)
    {
        for (slot = Slot(hash); ; slot = (slot + 1) & _mask)
        {
            var rank = _ranksPlusOne[slot] - 1;
            if (rank < 0)
            {
                return -1;
            }

            if (_hashes[slot] == hash && IsMerge(_merges[rank], left, right))
            {
                return rank;
            }
        }
    }

    public int MergedId(int slot) => Volatile.Read(ref _mergedIdsPlusTwo[slot]) - 2;

    public void SetMergedId(int slot, int id) => Volatile.Write(ref _mergedIdsPlusTwo[slot], id + 2);

    // A repeated merge keeps its first (lowest) rank, as in llama.cpp.
    private void Add(ulong hash, int rank)
    {
        var merge = _merges[rank];
        for (var slot = Slot(hash); ; slot = (slot + 1) & _mask)
        {
            var existing = _ranksPlusOne[slot] - 1;
            if (existing < 0)
            {
                _hashes[slot] = hash;
                _ranksPlusOne[slot] = rank + 1;
                return;
            }

            if (_hashes[slot] == hash && string.Equals(_merges[existing], merge, StringComparison.Ordinal))
            {
                return;
            }
        }
    }

    /// <summary>Where "a b" splits: the first space after the first character, as llama.cpp reads merges; -1 if none.</summary>
    public static int SplitAt(ReadOnlySpan<char> merge) => merge.Length < 2 ? -1 : (merge[1..].IndexOf(' ') is var at and >= 0 ? at + 1 : -1);

    private static bool IsMerge(string merge, ReadOnlySpan<char> left, ReadOnlySpan<char> right) =>
        merge.Length == left.Length + 1 + right.Length
        && SplitAt(merge) == left.Length
        && merge.AsSpan(0, left.Length).SequenceEqual(left)
        && merge.AsSpan(left.Length + 1).SequenceEqual(right);

    private static void InterlockedMin(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value < current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private int Slot(ulong hash) => (int)((hash * Fibonacci) >> _shift);
}
