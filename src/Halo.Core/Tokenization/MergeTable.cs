namespace Halo.Core.Tokenization;

/// <summary>
/// BPE merges as an open-addressing hash table: (left id, right id) packed in a long -> rank, with the
/// merged token's id filled in on first use. A Dictionary&lt;long, int&gt; hashes a long as hi ^ lo, which
/// for id pairs collides heavily (280k LLaMA-3 merges took ~10x longer to insert); a multiplicative
/// (Fibonacci) hash over the packed key spreads them.
/// </summary>
internal sealed class MergeTable
{
    /// <summary>Merged id not looked up yet.</summary>
    public const int NotResolved = -2;

    private const ulong Fibonacci = 0x9E3779B97F4A7C15;

    private readonly long[] _keys;
    private readonly int[] _ranks;     // -1: empty slot
    private readonly int[] _mergedIds; // NotResolved until first use, -1 when the merged string is no token
    private readonly int _shift;
    private readonly int _mask;

    public MergeTable(int capacity)
    {
        // Power of two at least twice the entries: short probe runs.
        var bits = 4;
        while ((1 << bits) < capacity * 2L)
        {
            bits++;
        }

        _keys = new long[1 << bits];
        _ranks = new int[1 << bits];
        _mergedIds = new int[1 << bits];
        Array.Fill(_ranks, -1);
        Array.Fill(_mergedIds, NotResolved);
        _shift = 64 - bits;
        _mask = (1 << bits) - 1;
    }

    /// <summary>Adds a merge unless the pair is already there (the first, lowest rank wins, as in llama.cpp).</summary>
    public bool TryAdd(int left, int right, int rank)
    {
        var key = Pack(left, right);
        for (var slot = Slot(key); ; slot = (slot + 1) & _mask)
        {
            if (_ranks[slot] < 0)
            {
                _keys[slot] = key;
                _ranks[slot] = rank;
                return true;
            }

            if (_keys[slot] == key)
            {
                return false;
            }
        }
    }

    /// <summary>The rank of merging <paramref name="left"/> with <paramref name="right"/>, or -1 if they do not merge.</summary>
    public int Find(int left, int right, out int slot)
    {
        var key = Pack(left, right);
        for (slot = Slot(key); ; slot = (slot + 1) & _mask)
        {
            var rank = _ranks[slot];
            if (rank < 0 || _keys[slot] == key)
            {
                return rank;
            }
        }
    }

    public int MergedId(int slot) => Volatile.Read(ref _mergedIds[slot]);

    public void SetMergedId(int slot, int id) => Volatile.Write(ref _mergedIds[slot], id);

    private static long Pack(int left, int right) => ((long)left << 32) | (uint)right;

    private int Slot(long key) => (int)(((ulong)key * Fibonacci) >> _shift);
}
