using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Text;

namespace Halo.Core.Tokenization;

/// <summary>
/// Byte-level BPE (GPT-2 / LLaMA-3 style) with the <c>llama-bpe</c> pre-tokenizer, producing exactly the ids
/// llama.cpp produces: text is cut at special tokens (control tokens only when the caller asks), each piece
/// is split into words by <see cref="LlamaBpeSplitter"/>, a word that is itself a token is taken whole
/// (llama.cpp's <c>ignore_merges</c> for LLaMA-3), and any other word is merged pair by pair, lowest merge
/// rank first and leftmost on ties. Thread-safe: one instance serves every request.
/// </summary>
/// <remarks>
/// Why our own and not Microsoft.ML.Tokenizers: its BPE/Tiktoken tokenizers are built from tokenizer.json or
/// tiktoken files and its own pre-tokenizer regexes, while Halo must build a tokenizer from GGUF metadata
/// (token list, "a b" merge strings, token types) with llama.cpp's exact rules: the scanner semantics of
/// the llama-bpe split, whole-word lookup before merging, special tokens split out longest first, control
/// tokens parsed only on request, user-defined tokens always. Matching llama.cpp id for id is the contract
/// (the shared LLaMA-3 cases), and owning this code keeps that contract and the load time (merges keyed
/// by a composable hash of "a b", so loading never looks merge parts up; tables built in parallel) under
/// our control.
/// </remarks>
public sealed class BpeTokenizer
{
    private readonly string[] _tokens;
    private readonly TokenType[] _types;
    private readonly Dictionary<string, int> _vocabulary;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabularyBySpan;
    private readonly int[] _byteTokens = new int[256];              // byte -> id of its single-byte token, -1 if none
    private readonly MergeTable _merges;                           // "a b" -> (rank, merged id)
    private readonly ulong[] _tokenHashes;                         // id -> PolynomialHash of its string
    private readonly ulong[] _tokenShifts;                         // id -> B^length, to compose pair hashes
    private readonly byte[] _pieceBytes;                           // every token's decoded bytes, back to back
    private readonly int[] _pieceOffsets;                          // token id -> start in _pieceBytes; [n] = end
    private readonly SpecialToken[] _specialTokens;                // longest first
    private readonly SearchValues<char> _specialFirstChars;        // first chars of all special tokens
    private readonly SearchValues<char> _userDefinedFirstChars;    // first chars of those matched without parseSpecial
    private readonly int[] _endOfGeneration;

    [ThreadStatic]
    private static MergeWorkspace? t_workspace;

    /// <summary>Builds the tokenizer; validates the model and throws <see cref="ArgumentException"/> naming what is wrong.</summary>
    public BpeTokenizer(TokenizerModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        if (model.Model != "gpt2")
        {
            throw new NotSupportedException($"Tokenizer model '{model.Model}' is not supported; Halo reads byte-level BPE ('gpt2') vocabularies.");
        }

        if (!IsLlamaBpe(model.PreTokenizer))
        {
            throw new NotSupportedException($"Pre-tokenizer '{model.PreTokenizer}' is not supported; Halo implements LLaMA-3's 'llama-bpe' split.");
        }

        var count = model.Tokens.Count;
        if (count == 0)
        {
            throw new ArgumentException("The tokenizer has an empty vocabulary.", nameof(model));
        }

        if (model.TokenTypes is { } tokenTypes && tokenTypes.Count != count)
        {
            throw new ArgumentException($"The tokenizer has {count} tokens but {tokenTypes.Count} token types.", nameof(model));
        }

        CheckSpecialId(model.BosId, count, "BOS");
        CheckSpecialId(model.EosId, count, "EOS");
        CheckSpecialId(model.EotId, count, "EOT");
        CheckSpecialId(model.PadId, count, "PAD");

        _tokens = new string[count];
        _types = new TokenType[count];
        for (var id = 0; id < count; id++)
        {
            _tokens[id] = model.Tokens[id] ?? throw new ArgumentException($"Token {id} is null.", nameof(model));
            _types[id] = TypeOf(model, id);
        }

        // The four tables are independent; building them side by side keeps loading short on many cores.
        Dictionary<string, int> vocabulary = null!;
        ulong[] tokenHashes = null!, tokenShifts = null!;
        MergeTable merges = null!;
        byte[] pieceBytes = null!;
        int[] pieceOffsets = null!;
        try
        {
            Parallel.Invoke(
                () => vocabulary = BuildVocabulary(_tokens),
                () => (tokenHashes, tokenShifts) = HashTokens(_tokens),
                () => merges = new MergeTable(model.Merges),
                () => (pieceBytes, pieceOffsets) = BuildPieces(_tokens, _types));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1 && e.InnerException is ArgumentException)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
        }

        _vocabulary = vocabulary;
        _vocabularyBySpan = _vocabulary.GetAlternateLookup<ReadOnlySpan<char>>();
        _tokenHashes = tokenHashes;
        _tokenShifts = tokenShifts;
        _merges = merges;
        _pieceBytes = pieceBytes;
        _pieceOffsets = pieceOffsets;

        Span<char> one = stackalloc char[1];
        for (var b = 0; b < 256; b++)
        {
            one[0] = ByteLevelAlphabet.ByteToChar[b];
            _byteTokens[b] = _vocabularyBySpan.TryGetValue(one, out var id) ? id : -1;
        }

        _specialTokens = CollectSpecialTokens();
        _specialFirstChars = SearchValues.Create(FirstChars(_specialTokens, controlToo: true));
        _userDefinedFirstChars = SearchValues.Create(FirstChars(_specialTokens, controlToo: false));
        _endOfGeneration = CollectEndOfGeneration();
    }

    /// <summary>The model this tokenizer was built from.</summary>
    public TokenizerModel Model { get; }

    /// <summary>Number of token ids (the size of the model's output layer may be larger).</summary>
    public int VocabularySize => _tokens.Length;

    public int BosId => Model.BosId;

    public int EosId => Model.EosId;

    public int EotId => Model.EotId;

    /// <summary>Whether <see cref="Encode(ReadOnlySpan{char}, List{int}, bool, bool)"/> with addSpecial puts BOS first.</summary>
    public bool AddBos => Model.AddBos && Model.BosId >= 0;

    /// <summary>Tokens that end a generation: EOS, EOT and LLaMA-3's &lt;|eom_id|&gt; where the vocabulary has them.</summary>
    public ReadOnlySpan<int> EndOfGenerationIds => _endOfGeneration;

    /// <summary>True for a token that ends a generation (see <see cref="EndOfGenerationIds"/>).</summary>
    public bool IsEndOfGeneration(int id) => Array.IndexOf(_endOfGeneration, id) >= 0;

    /// <summary>The token's string as the vocabulary stores it (byte-level alphabet for normal tokens).</summary>
    public string TokenText(int id) => _tokens[CheckId(id)];

    public TokenType TokenTypeOf(int id) => _types[CheckId(id)];

    /// <summary>The bytes a token stands for: its decoded text for normal tokens, its own text for special ones.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id)
    {
        CheckId(id);
        return _pieceBytes.AsSpan(_pieceOffsets[id], _pieceOffsets[id + 1] - _pieceOffsets[id]);
    }

    /// <summary>Looks a token up by its vocabulary string (e.g. "&lt;|eot_id|&gt;").</summary>
    public bool TryGetTokenId(ReadOnlySpan<char> tokenText, out int id) => _vocabularyBySpan.TryGetValue(tokenText, out id);

    /// <summary>
    /// Tokenizes <paramref name="text"/>. <paramref name="addSpecial"/> puts BOS first when the model asks for
    /// it (<see cref="AddBos"/>), and EOS last when it asks for that. <paramref name="parseSpecial"/> lets
    /// control tokens written in the text (e.g. "&lt;|eot_id|&gt;") become those tokens; leave it false for any
    /// text that came from a user.
    /// </summary>
    public int[] Encode(ReadOnlySpan<char> text, bool addSpecial = true, bool parseSpecial = false)
    {
        var output = new List<int>(text.Length / 3 + 2);
        Encode(text, output, addSpecial, parseSpecial);
        return output.ToArray();
    }

    /// <summary>Tokenizes <paramref name="text"/>, appending to <paramref name="output"/>; see <see cref="Encode(ReadOnlySpan{char}, bool, bool)"/>.</summary>
    public void Encode(ReadOnlySpan<char> text, List<int> output, bool addSpecial = true, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (addSpecial && AddBos)
        {
            output.Add(Model.BosId);
        }

        if (text.IndexOfAny(parseSpecial ? _specialFirstChars : _userDefinedFirstChars) < 0)
        {
            EncodeText(text, output);
        }
        else
        {
            EncodeWithSpecialTokens(text, output, parseSpecial);
        }

        if (addSpecial && Model.AddEos && Model.EosId >= 0)
        {
            output.Add(Model.EosId);
        }
    }

    /// <summary>
    /// Decodes ids to text. Control tokens (BOS, EOT, ...) come out as their text only when
    /// <paramref name="renderSpecial"/> is set, and are dropped otherwise, as llama.cpp's token_to_piece does.
    /// Bytes that are not valid UTF-8 become U+FFFD.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool renderSpecial = false)
    {
        var length = 0;
        foreach (var id in ids)
        {
            length += PieceLength(id, renderSpecial);
        }

        var rented = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            var written = 0;
            foreach (var id in ids)
            {
                written += AppendPiece(id, renderSpecial, rented.AsSpan(written));
            }

            return Encoding.UTF8.GetString(rented, 0, written);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Number of bytes token <paramref name="id"/> decodes to under the given special-token rule.</summary>
    internal int PieceLength(int id, bool renderSpecial) =>
        IsRendered(CheckId(id), renderSpecial) ? _pieceOffsets[id + 1] - _pieceOffsets[id] : 0;

    /// <summary>Copies token <paramref name="id"/>'s bytes (if rendered) into <paramref name="destination"/>.</summary>
    internal int AppendPiece(int id, bool renderSpecial, Span<byte> destination)
    {
        if (!IsRendered(CheckId(id), renderSpecial))
        {
            return 0;
        }

        var piece = _pieceBytes.AsSpan(_pieceOffsets[id], _pieceOffsets[id + 1] - _pieceOffsets[id]);
        piece.CopyTo(destination);
        return piece.Length;
    }

    private bool IsRendered(int id, bool renderSpecial) => _types[id] switch
    {
        TokenType.Control or TokenType.Unknown => renderSpecial,
        TokenType.Unused => false,
        _ => true,
    };

    private int CheckId(int id)
    {
        if ((uint)id >= (uint)_tokens.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id is outside the vocabulary (0..{_tokens.Length - 1}).");
        }

        return id;
    }

    // ---- encoding ------------------------------------------------------------------------------------------

    /// <summary>
    /// llama.cpp's special-token partition: for each special token, longest first, every stretch of text not
    /// yet claimed is cut at its occurrences. Control tokens take part only when parseSpecial is set;
    /// user-defined tokens always do.
    /// </summary>
    private void EncodeWithSpecialTokens(ReadOnlySpan<char> text, List<int> output, bool parseSpecial)
    {
        // Fragments: (start, length, -1) for text still to tokenize, (0, 0, id) for a matched special token.
        // Each pass rebuilds the list, so many occurrences cost linear time, not a quadratic insert.
        var fragments = new List<(int Start, int Length, int Id)> { (0, text.Length, -1) };
        var next = new List<(int Start, int Length, int Id)>();
        foreach (var special in _specialTokens)
        {
            if (!parseSpecial && special.IsControl)
            {
                continue;
            }

            next.Clear();
            foreach (var fragment in fragments)
            {
                if (fragment.Id >= 0)
                {
                    next.Add(fragment);
                    continue;
                }

                var at = fragment.Start;
                var end = fragment.Start + fragment.Length;
                while (at < end)
                {
                    var found = text[at..end].IndexOf(special.Text, StringComparison.Ordinal);
                    if (found < 0)
                    {
                        break;
                    }

                    if (found > 0)
                    {
                        next.Add((at, found, -1));
                    }

                    next.Add((0, 0, special.Id));
                    at += found + special.Text.Length;
                }

                if (at < end)
                {
                    next.Add((at, end - at, -1));
                }
            }

            (fragments, next) = (next, fragments);
        }

        foreach (var (start, length, id) in fragments)
        {
            if (id >= 0)
            {
                output.Add(id);
            }
            else
            {
                EncodeText(text.Slice(start, length), output);
            }
        }
    }

    /// <summary>Tokenizes text that holds no special tokens: pre-tokenize, then BPE each word.</summary>
    private void EncodeText(ReadOnlySpan<char> text, List<int> output)
    {
        var workspace = t_workspace ??= new MergeWorkspace();
        var splitter = new LlamaBpeSplitter(text);
        while (splitter.TryNext(out var start, out var length))
        {
            var word = text.Slice(start, length);
            var byteCount = Encoding.UTF8.GetByteCount(word);
            var bytes = workspace.Bytes(byteCount);
            Encoding.UTF8.GetBytes(word, bytes);
            EncodeWord(bytes, output, workspace);
        }
    }

    private void EncodeWord(ReadOnlySpan<byte> bytes, List<int> output, MergeWorkspace workspace)
    {
        if (bytes.Length == 1)
        {
            AddByteToken(bytes[0], output);
            return;
        }

        // llama-bpe sets llama.cpp's ignore_merges: a word that is a token is taken whole, even where merging
        // would split it differently (LLaMA-3's vocabulary comes from tiktoken, where that happens).
        var mapped = workspace.Chars(bytes.Length);
        for (var i = 0; i < bytes.Length; i++)
        {
            mapped[i] = ByteLevelAlphabet.ByteToChar[bytes[i]];
        }

        if (_vocabularyBySpan.TryGetValue(mapped, out var whole))
        {
            output.Add(whole);
            return;
        }

        MergeWord(bytes, output, workspace);
    }

    /// <summary>
    /// BPE over one word: start from single-byte tokens, repeatedly merge the adjacent pair with the lowest
    /// merge rank (leftmost on ties) until no pair has a merge. A heap of (rank, left position) keeps it
    /// O(n log n) for long words; stale heap entries are skipped when popped.
    /// </summary>
    private void MergeWord(ReadOnlySpan<byte> bytes, List<int> output, MergeWorkspace workspace)
    {
        var n = bytes.Length;
        var ids = workspace.Ids(n);
        var next = workspace.Next(n);
        var prev = workspace.Prev(n);
        for (var i = 0; i < n; i++)
        {
            ids[i] = _byteTokens[bytes[i]];
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }

        var heap = workspace.Heap(n);
        heap.Clear();
        for (var i = 0; i + 1 < n; i++)
        {
            PushPair(heap, ids, i, i + 1);
        }

        while (heap.Count > 0)
        {
            var entry = heap.Dequeue();
            var rank = (int)(entry >> 32);
            var left = (int)(uint)entry;
            if (ids[left] < 0)
            {
                continue; // merged away
            }

            var right = next[left];
            if (right < 0 || RankOf(ids[left], ids[right], out var merged) != rank)
            {
                continue; // the pair changed since it was queued
            }

            // Merge right into left and unlink right.
            ids[left] = merged;
            ids[right] = -1;
            next[left] = next[right];
            if (next[right] >= 0)
            {
                prev[next[right]] = left;
            }

            if (prev[left] >= 0)
            {
                PushPair(heap, ids, prev[left], left);
            }

            if (next[left] >= 0)
            {
                PushPair(heap, ids, left, next[left]);
            }
        }

        for (var i = 0; i >= 0; i = next[i])
        {
            // A byte without a token (never in a complete byte-level vocabulary) is dropped, as llama.cpp does.
            if (ids[i] >= 0)
            {
                output.Add(ids[i]);
            }
        }
    }

    private void PushPair(PriorityQueue<long, long> heap, Span<int> ids, int left, int right)
    {
        var rank = RankOf(ids[left], ids[right], out _);
        if (rank >= 0)
        {
            var key = ((long)rank << 32) | (uint)left;
            heap.Enqueue(key, key);
        }
    }

    private int RankOf(int left, int right, out int merged)
    {
        merged = -1;
        if (left < 0 || right < 0)
        {
            return -1;
        }

        var hash = PolynomialHash.OfPair(_tokenHashes[left], _tokenHashes[right], _tokenShifts[right]);
        var rank = _merges.Find(hash, _tokens[left], _tokens[right], out var slot);
        if (rank < 0)
        {
            return -1;
        }

        merged = _merges.MergedId(slot);
        if (merged == MergeTable.NotResolved)
        {
            // Racing threads compute the same id; the write is a plain int store.
            merged = MergedId(left, right);
            _merges.SetMergedId(slot, merged);
        }

        return merged >= 0 ? rank : -1;
    }

    private void AddByteToken(byte b, List<int> output)
    {
        var id = _byteTokens[b];
        if (id >= 0)
        {
            output.Add(id);
        }
    }

    // ---- loading -------------------------------------------------------------------------------------------

    /// <summary>The id of the token two merged tokens form; -1 if that string is not a token (the merge never fires).</summary>
    private int MergedId(int left, int right)
    {
        var leftText = _tokens[left];
        var rightText = _tokens[right];
        var length = leftText.Length + rightText.Length;
        var buffer = length <= 256 ? stackalloc char[256] : new char[length];
        leftText.CopyTo(buffer);
        rightText.CopyTo(buffer[leftText.Length..]);
        return _vocabularyBySpan.TryGetValue(buffer[..length], out var id) ? id : -1;
    }

    private static Dictionary<string, int> BuildVocabulary(string[] tokens)
    {
        var vocabulary = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (var id = 0; id < tokens.Length; id++)
        {
            // Duplicate strings happen in padded vocabularies; llama.cpp keeps the last id, so do we.
            vocabulary[tokens[id]] = id;
        }

        return vocabulary;
    }

    private static (ulong[] Hashes, ulong[] Shifts) HashTokens(string[] tokens)
    {
        var hashes = new ulong[tokens.Length];
        var shifts = new ulong[tokens.Length];
        for (var id = 0; id < tokens.Length; id++)
        {
            hashes[id] = PolynomialHash.Of(tokens[id], out shifts[id]);
        }

        return (hashes, shifts);
    }

    // Every token's bytes back to back: byte-level decoded for normal tokens, the UTF-8 text for special ones.
    private static (byte[] Bytes, int[] Offsets) BuildPieces(string[] tokens, TokenType[] types)
    {
        var offsets = new int[tokens.Length + 1];
        var total = 0;
        for (var id = 0; id < tokens.Length; id++)
        {
            offsets[id] = total;
            total += IsByteLevel(types[id]) ? ByteLevelLength(tokens[id]) : Encoding.UTF8.GetByteCount(tokens[id]);
        }

        offsets[tokens.Length] = total;
        var bytes = new byte[total];
        for (var id = 0; id < tokens.Length; id++)
        {
            var destination = bytes.AsSpan(offsets[id], offsets[id + 1] - offsets[id]);
            if (IsByteLevel(types[id]))
            {
                WriteByteLevel(tokens[id], destination);
            }
            else
            {
                Encoding.UTF8.GetBytes(tokens[id], destination);
            }
        }

        return (bytes, offsets);
    }

    private static bool IsByteLevel(TokenType type) => type is TokenType.Normal or TokenType.Byte or TokenType.Undefined;

    // A character outside the byte alphabet (only in hand-made vocabularies) decodes as its own UTF-8.
    private static int ByteLevelLength(string token)
    {
        var length = 0;
        foreach (var c in token)
        {
            var single = c;
            length += ByteLevelAlphabet.ToByte(c) >= 0 ? 1 : Encoding.UTF8.GetByteCount(new ReadOnlySpan<char>(in single));
        }

        return length;
    }

    private static void WriteByteLevel(string token, Span<byte> destination)
    {
        var at = 0;
        foreach (var c in token)
        {
            var b = ByteLevelAlphabet.ToByte(c);
            if (b >= 0)
            {
                destination[at++] = (byte)b;
            }
            else
            {
                var single = c;
                at += Encoding.UTF8.GetBytes(new ReadOnlySpan<char>(in single), destination[at..]);
            }
        }
    }

    /// <summary>The special tokens longest first, as llama.cpp, and by id within a length so the order is deterministic:
    /// a counting sort on the length, as ids are visited in order. A vocabulary can hold a hundred thousand of them (a
    /// synthetic one padded with reserved tokens), which a comparison sort took 10-20 ms of the daemon's start to order.</summary>
    private SpecialToken[] CollectSpecialTokens()
    {
        var atLength = new int[2];
        int count = 0;
        for (var id = 0; id < _tokens.Length; id++)
        {
            if (IsSpecial(id))
            {
                int length = _tokens[id].Length;
                if (length >= atLength.Length)
                {
                    Array.Resize(ref atLength, Math.Max(length + 1, 2 * atLength.Length));
                }

                atLength[length]++;
                count++;
            }
        }

        // next[n]: where the next token of length n goes; all the longer ones come before the first.
        var next = new int[atLength.Length];
        for (int length = atLength.Length - 1, start = 0; length >= 1; length--)
        {
            next[length] = start;
            start += atLength[length];
        }

        var specials = new SpecialToken[count];
        for (var id = 0; id < _tokens.Length; id++)
        {
            if (IsSpecial(id))
            {
                specials[next[_tokens[id].Length]++] = new SpecialToken(_tokens[id], id, _types[id] != TokenType.UserDefined);
            }
        }

        return specials;
    }

    private bool IsSpecial(int id) => _types[id] is TokenType.Control or TokenType.UserDefined or TokenType.Unknown && _tokens[id].Length > 0;

    private static char[] FirstChars(SpecialToken[] specials, bool controlToo)
    {
        var chars = new HashSet<char>();
        foreach (var special in specials)
        {
            if (controlToo || !special.IsControl)
            {
                chars.Add(special.Text[0]);
            }
        }

        return chars.ToArray();
    }

    private int[] CollectEndOfGeneration()
    {
        var ids = new List<int>();
        void Add(int id)
        {
            if (id >= 0 && !ids.Contains(id))
            {
                ids.Add(id);
            }
        }

        Add(Model.EosId);
        Add(Model.EotId);
        if (_vocabulary.TryGetValue("<|eom_id|>", out var eom) && _types[eom] == TokenType.Control)
        {
            Add(eom);
        }

        return ids.ToArray();
    }

    private static TokenType TypeOf(TokenizerModel model, int id)
    {
        if (model.TokenTypes is { } types)
        {
            var type = types[id];
            return type is >= 0 and <= (int)TokenType.Byte ? (TokenType)type : TokenType.Undefined;
        }

        // Without token types only the declared special tokens are control tokens.
        return id == model.BosId || id == model.EosId || id == model.EotId || id == model.PadId ? TokenType.Control : TokenType.Normal;
    }

    private static void CheckSpecialId(int id, int count, string name)
    {
        if (id < -1 || id >= count)
        {
            throw new ArgumentException($"The {name} token id {id} is outside the vocabulary of {count} tokens.", "model");
        }
    }

    // The tokenizer.ggml.pre names llama.cpp runs with the LLaMA-3 split and ignore_merges.
    internal static bool IsLlamaBpe(string preTokenizer) =>
        preTokenizer is "llama-bpe" or "llama3" or "llama-v3" or "falcon3" or "falcon-h1" or "pixtral" or "midm-2.0" or "lfm2";

    private sealed record SpecialToken(string Text, int Id, bool IsControl);

    /// <summary>
    /// Per-thread scratch buffers so that encoding allocates nothing per word once warm. Words longer than
    /// <see cref="MaxCachedWord"/> bytes (a megabyte of spaces, say) get buffers of their own, so that one odd
    /// request does not pin large arrays to a server thread.
    /// </summary>
    private sealed class MergeWorkspace
    {
        private const int MaxCachedWord = 1 << 16;

        private byte[] _bytes = new byte[256];
        private char[] _chars = new char[256];
        private int[] _ids = new int[256];
        private int[] _next = new int[256];
        private int[] _prev = new int[256];
        private readonly PriorityQueue<long, long> _heap = new();

        public PriorityQueue<long, long> Heap(int n) => n <= MaxCachedWord ? _heap : new PriorityQueue<long, long>(n);

        public Span<byte> Bytes(int n) => Buffer(ref _bytes, n);

        public Span<char> Chars(int n) => Buffer(ref _chars, n);

        public Span<int> Ids(int n) => Buffer(ref _ids, n);

        public Span<int> Next(int n) => Buffer(ref _next, n);

        public Span<int> Prev(int n) => Buffer(ref _prev, n);

        private static Span<T> Buffer<T>(ref T[] cached, int n)
        {
            if (n > MaxCachedWord)
            {
                return new T[n];
            }

            if (cached.Length < n)
            {
                cached = new T[Math.Max(n, cached.Length * 2)];
            }

            return cached.AsSpan(0, n);
        }
    }
}
