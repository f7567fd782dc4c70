using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Halo.Core.Formats;

namespace Halo.Engine.Weights;

/// <summary>
/// A ternary weight matrix W [rows = out features, cols = in features], repacked at load into the layout the
/// CPU kernels stream: rows in tiles of <see cref="TileRows"/>, and for each tile the 256-column blocks in order,
/// each block as <see cref="TileRows"/> runs of 64 bytes (one per row). So one thread computing a range of
/// tiles reads one sequential buffer. A row's 64-byte block is TQ2_0's own: byte j holds in bits 2l..2l+1 the
/// code (w + 1, in 0..2) of column (j / 32) * 128 + l * 32 + j % 32, so repacking TQ2_0 is a copy. The
/// kernels read field l of all 64 bytes against 64 activations that <see cref="KernelOrder"/> placed next to
/// each other when they were quantized.
/// </summary>
public sealed unsafe class TernaryMatrix : IDisposable
{
    public const int BlockSize = 256;
    public const int TileRows = 4;
    public const int BlockBytes = BlockSize / 4;

    /// <summary>Bytes of one 256-column block of a tile (its <see cref="TileRows"/> rows' runs): a row's next block is this far on.</summary>
    public const int TileBlockBytes = TileRows * BlockBytes;

    private byte* _codes;    // [tiles, blocks, TileRows, 64]
    private float* _scales;  // [tiles, blocks, TileRows] block scale d (rows past Rows have 0)
    private float* _rowScales; // [tiles * TileRows] the scale all of a row's blocks share, or null (see RowScales)
    private float* _rowScaleSlot; // [RowScalesAt + tiles * TileRows]: 1 when the row scales exist, then the row scales
    private readonly bool _ownsMemory;
    private readonly bool _cached; // over a repack cache's read-only arena, whose slices hold a finished repack
    private float _masterScale; // s = mean|W| of F32/F16/BF16 master weights, set by Allocate

    // Memory from an arena arrives zeroed and is freed with the arena; otherwise this matrix owns (and clears) its own.
    private TernaryMatrix(string name, int rows, int cols, float tensorScale, WeightArena? arena = null)
    {
        Name = name;
        Rows = rows;
        Cols = cols;
        Blocks = cols / BlockSize;
        Tiles = (rows + TileRows - 1) / TileRows;
        TensorScale = tensorScale;
        nuint codeBytes = (nuint)Tiles * (nuint)Blocks * TileBlockBytes;
        nuint scaleBytes = (nuint)Tiles * (nuint)Blocks * TileRows * sizeof(float);
        nuint rowScaleBytes = RowScaleSlotBytes(Tiles);
        if (arena is not null)
        {
            _codes = arena.Take((long)codeBytes);
            _scales = (float*)arena.Take((long)scaleBytes);
            _rowScaleSlot = (float*)arena.Take((long)rowScaleBytes);
            _cached = arena.IsReadOnly;
            return;
        }

        _ownsMemory = true;
        _codes = (byte*)NativeMemory.AlignedAlloc(codeBytes, 64);
        _scales = (float*)NativeMemory.AlignedAlloc(scaleBytes, 64);
        _rowScaleSlot = (float*)NativeMemory.AlignedAlloc(rowScaleBytes, 64);
        NativeMemory.Clear(_codes, codeBytes);
        NativeMemory.Clear(_scales, scaleBytes);
        NativeMemory.Clear(_rowScaleSlot, rowScaleBytes);
    }

    // The row scales start one cache line into their slot, after the flag that says whether they exist.
    private const int RowScalesAt = 64 / sizeof(float);

    private static nuint RowScaleSlotBytes(long tiles) => (nuint)(RowScalesAt + tiles * TileRows) * sizeof(float);

    public string Name { get; }

    public int Rows { get; }

    public int Cols { get; }

    public int Blocks { get; }

    public int Tiles { get; }

    /// <summary>The per-tensor scale s (<c>*.scale</c> tensor; 1 when absent), applied to the matmul output.</summary>
    public float TensorScale { get; }

    public byte* Codes => _codes;

    public float* Scales => _scales;

    /// <summary>
    /// One scale per row when every block of each row that holds a nonzero weight has the same scale, else null.
    /// BitNet checkpoints have one scale per tensor, so this is the common case, and it lets the kernels sum a
    /// whole row in integers and scale once instead of converting every 256-block to float.
    /// </summary>
    public float* RowScales => _rowScales;

    /// <summary>Where column e of a 256-block sits in kernel order: field l of byte j is position l * 64 + j.</summary>
    public static int KernelOrder(int e) => (e % 128 / 32) * 64 + (e / 128) * 32 + e % 32;

    public long ByteLength => (long)Tiles * Blocks * TileRows * (BlockBytes + sizeof(float));

    /// <summary>Bytes a matrix of this shape takes from a <see cref="WeightArena"/>.</summary>
    public static long ArenaBytes(int rows, int cols)
    {
        long tiles = (rows + TileRows - 1) / TileRows, entries = tiles * (cols / BlockSize) * TileRows;
        return WeightArena.SliceBytes(entries * BlockBytes) + WeightArena.SliceBytes(entries * sizeof(float))
            + WeightArena.SliceBytes((long)RowScaleSlotBytes(tiles));
    }

    /// <summary>
    /// Repacks a GGUF tensor (TQ2_0, TQ1_0, or F32/F16/BF16 master weights, which are ternarized per tensor with
    /// s = mean|W|) of ggml shape [cols, rows].
    /// </summary>
    public static TernaryMatrix FromTensor(string file, TensorView tensor, float tensorScale)
    {
        TernaryMatrix m = Allocate(file, tensor, tensorScale, arena: null);
        try
        {
            Parallel.For(0, m.Tiles, t => m.RepackTiles(tensor, t, t + 1));
            m.FinishRepack();
        }
        catch
        {
            m.Dispose();
            throw;
        }

        return m;
    }

    /// <summary>
    /// The first half of <see cref="FromTensor"/>, for loaders that repack many matrices in one parallel sweep:
    /// checks the tensor (shape, type, byte count: every defect is an <see cref="InvalidModelException"/> here,
    /// never later), takes zeroed memory (from <paramref name="arena"/> when given) and, for float master
    /// weights, measures s = mean|W|. <see cref="RepackTiles"/> then fills it, any tiles in any order, and
    /// <see cref="FinishRepack"/> completes it. Over a read-only arena (a repack cache, carved in the same order)
    /// the slices already hold the repacked matrix: only <see cref="FinishRepack"/> is called.
    /// </summary>
    public static TernaryMatrix Allocate(string file, TensorView tensor, float tensorScale, WeightArena? arena)
    {
        if (tensor.Shape.Length != 2)
        {
            throw new InvalidModelException(file, $"tensor '{tensor.Name}' must be 2-D, has {tensor.Shape.Length} dimensions");
        }

        long cols = tensor.Shape[0], rows = tensor.Shape[1];
        if (cols % BlockSize != 0 || cols <= 0 || rows <= 0 || rows > int.MaxValue || cols > int.MaxValue)
        {
            throw new InvalidModelException(file, $"tensor '{tensor.Name}' has shape [{cols}, {rows}]: the input size must be a positive multiple of {BlockSize}");
        }

        long needed = tensor.Type switch
        {
            GgmlType.TQ2_0 => rows * (cols / BlockSize) * 66,
            GgmlType.TQ1_0 => rows * (cols / BlockSize) * 54,
            GgmlType.F32 => rows * cols * 4,
            GgmlType.F16 or GgmlType.BF16 => rows * cols * 2,
            _ => throw new InvalidModelException(file, $"tensor '{tensor.Name}' has type {tensor.Type}, which is not a ternary weight type this engine reads (TQ2_0, TQ1_0, F32, F16, BF16)"),
        };
        RequireBytes(file, tensor, needed);
        var m = new TernaryMatrix(tensor.Name, (int)rows, (int)cols, tensorScale, arena);
        if (tensor.Type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16)
        {
            m._masterScale = MeanAbs(tensor, rows * cols);
        }

        return m;
    }

    /// <summary>Fills tiles [<paramref name="firstTile"/>, <paramref name="endTile"/>) from the tensor given to
    /// <see cref="Allocate"/>. Distinct tile ranges may be filled concurrently.</summary>
    public void RepackTiles(TensorView tensor, int firstTile, int endTile)
    {
        switch (tensor.Type)
        {
            case GgmlType.TQ2_0:
                for (int t = firstTile; t < endTile; t++)
                {
                    CopyTq2Tile(tensor.Data, t);
                }

                break;
            case GgmlType.TQ1_0:
                for (int t = firstTile; t < endTile; t++)
                {
                    RepackTile(t, tensor.Data, 54, &DecodeTq1Block);
                }

                break;
            default:
                for (int t = firstTile; t < endTile; t++)
                {
                    TernarizeTile(tensor, t, _masterScale);
                }

                break;
        }
    }

    /// <summary>Builds a matrix from ternary values [rows, cols] (row-major) and block scales [rows, cols/256].</summary>
    public static TernaryMatrix FromValues(string name, ReadOnlySpan<sbyte> values, ReadOnlySpan<float> blockScales, int rows, int cols, float tensorScale)
    {
        if (cols % BlockSize != 0 || values.Length != rows * cols || blockScales.Length != rows * (cols / BlockSize))
        {
            throw new ArgumentException("values must be [rows, cols] with cols a multiple of 256, scales [rows, cols/256]");
        }

        var m = new TernaryMatrix(name, rows, cols, tensorScale);
        Span<sbyte> block = stackalloc sbyte[BlockSize];
        for (int r = 0; r < rows; r++)
        {
            for (int b = 0; b < m.Blocks; b++)
            {
                values.Slice(r * cols + b * BlockSize, BlockSize).CopyTo(block);
                m.StoreBlock(r, b, block, blockScales[r * m.Blocks + b]);
            }
        }

        m.FinishRepack();
        return m;
    }

    /// <summary>The weight w[row, col] as a float (ternary value times block scale; tensor scale not applied).</summary>
    public float Get(int row, int col)
    {
        int b = col / BlockSize, e = col % BlockSize;
        long index = ((long)(row / TileRows) * Blocks + b) * TileRows + row % TileRows;
        int k = KernelOrder(e);
        int code = (_codes[index * BlockBytes + k % 64] >> (2 * (k / 64))) & 3;
        return (code - 1) * _scales[index];
    }

    /// <summary>The last step of a repack, once every tile is filled: finds the row scales and stores them beside the
    /// tiles (so a repack cache holds them too). Over a repack cache it only takes the stored ones: scanning every
    /// block scale again cost a warm start 12-15 ms.</summary>
    public void FinishRepack()
    {
        if (!_cached)
        {
            _rowScaleSlot[0] = FindRowScales(_rowScaleSlot + RowScalesAt) ? 1f : 0f;
        }

        _rowScales = _rowScaleSlot[0] == 1f ? _rowScaleSlot + RowScalesAt : null;
    }

    private bool FindRowScales(float* rowScales)
    {
        for (int row = 0; row < Tiles * TileRows; row++)
        {
            if (!TryRowScale(row, out rowScales[row]))
            {
                return false;
            }
        }

        return true;
    }

    // The scale shared by the row's blocks that hold a nonzero weight (0 for an all-zero row).
    private bool TryRowScale(int row, out float scale)
    {
        long first = (long)(row / TileRows) * Blocks * TileRows + row % TileRows;
        scale = 0f;
        bool found = false;
        for (int b = 0; b < Blocks; b++)
        {
            long index = first + (long)b * TileRows;
            float d = _scales[index];
            if ((found && d == scale) || IsZeroBlock(index))
            {
                continue;
            }

            if (found)
            {
                return false;
            }

            scale = d;
            found = true;
        }

        return true;
    }

    // Every code is 1 (w = 0), or the block scale is 0.
    private bool IsZeroBlock(long index)
    {
        if (_scales[index] == 0f)
        {
            return true;
        }

        ReadOnlySpan<byte> codes = new(_codes + index * BlockBytes, BlockBytes);
        return !codes.ContainsAnyExcept((byte)0b01010101);
    }

    private static void RequireBytes(string file, TensorView tensor, long needed)
    {
        if (tensor.ByteLength < needed)
        {
            throw new InvalidModelException(file, $"tensor '{tensor.Name}' holds {tensor.ByteLength} bytes, its shape and type need {needed}");
        }
    }

    // TQ2_0 blocks are qs[64] then f16 d: the codes already have the kernel's in-block order, so a tile is the
    // 64-byte runs of its rows interleaved block by block, written in destination order (one sequential stream out).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs once per tile at load, before tiering could help
    private void CopyTq2Tile(byte* source, int tile)
    {
        int rowsInTile = Math.Min(TileRows, Rows - tile * TileRows);
        long index = (long)tile * Blocks * TileRows;
        byte* tileSource = source + (long)tile * TileRows * Blocks * 66;
        for (int b = 0; b < Blocks; b++, index += TileRows)
        {
            for (int i = 0; i < rowsInTile; i++)
            {
                byte* src = tileSource + ((long)i * Blocks + b) * 66;
                byte* dst = _codes + (index + i) * BlockBytes;
                if (Vector512.IsHardwareAccelerated)
                {
                    Vector512.Store(Vector512.Load(src), dst);
                }
                else
                {
                    Vector256.Store(Vector256.Load(src), dst);
                    Vector256.Store(Vector256.Load(src + 32), dst + 32);
                }

                _scales[index + i] = HalfBits.ToSingle(*(ushort*)(src + 64));
            }
        }
    }

    private void RepackTile(int tile, byte* source, int sourceBlockBytes, delegate*<byte*, sbyte*, float> decode)
    {
        sbyte* block = stackalloc sbyte[BlockSize];
        for (int i = 0; i < TileRows; i++)
        {
            int r = tile * TileRows + i;
            if (r >= Rows)
            {
                break;
            }

            for (int b = 0; b < Blocks; b++)
            {
                float d = decode(source + ((long)r * Blocks + b) * sourceBlockBytes, block);
                StoreBlock(r, b, new ReadOnlySpan<sbyte>(block, BlockSize), d);
            }
        }
    }

    private void StoreBlock(int row, int block, ReadOnlySpan<sbyte> values, float scale)
    {
        long index = ((long)(row / TileRows) * Blocks + block) * TileRows + row % TileRows;
        byte* dst = _codes + index * BlockBytes;
        new Span<byte>(dst, BlockBytes).Clear();
        for (int e = 0; e < BlockSize; e++)
        {
            int k = KernelOrder(e);
            dst[k % 64] |= (byte)((values[e] + 1) << (2 * (k / 64)));
        }

        _scales[index] = scale;
    }

    // TQ1_0 block (54 bytes): qs[48] with 5 base-3 digits per byte, qh[4] with 4, f16 d. A digit n of byte q is
    // the top base-3 digit of q * 3^n (mod 256), read as ((q * 3^n mod 256) * 3) >> 8.
    private static float DecodeTq1Block(byte* src, sbyte* values)
    {
        ReadOnlySpan<byte> pow3 = [1, 3, 9, 27, 81, 243];
        int e = 0;
        for (int n = 0; n < 5; n++)
        {
            for (int m = 0; m < 32; m++)
            {
                values[e++] = Trit(src[m], pow3[n]);
            }
        }

        for (int n = 0; n < 5; n++)
        {
            for (int m = 0; m < 16; m++)
            {
                values[e++] = Trit(src[32 + m], pow3[n]);
            }
        }

        for (int n = 0; n < 4; n++)
        {
            for (int j = 0; j < 4; j++)
            {
                values[e++] = Trit(src[48 + j], pow3[n]);
            }
        }

        return HalfBits.ToSingle(*(ushort*)(src + 52));
    }

    private static sbyte Trit(byte q, byte pow)
    {
        byte shifted = (byte)(q * pow);
        return (sbyte)(((shifted * 3) >> 8) - 1);
    }

    // mean|W| over the whole tensor, summed in one order so that every load gets the same s.
    private static float MeanAbs(TensorView tensor, long n)
    {
        double sumAbs = 0;
        for (long i = 0; i < n; i++)
        {
            sumAbs += Math.Abs(ReadFloat(tensor, i));
        }

        return (float)Math.Max(sumAbs / n, 1e-5);
    }

    private void TernarizeTile(TensorView tensor, int tile, float s)
    {
        sbyte* block = stackalloc sbyte[BlockSize];
        for (int r = tile * TileRows; r < Math.Min(Rows, (tile + 1) * TileRows); r++)
        {
            for (int b = 0; b < Blocks; b++)
            {
                for (int e = 0; e < BlockSize; e++)
                {
                    float w = ReadFloat(tensor, (long)r * Cols + b * BlockSize + e);
                    block[e] = (sbyte)Math.Clamp(MathF.Round(w / s), -1f, 1f);
                }

                StoreBlock(r, b, new ReadOnlySpan<sbyte>(block, BlockSize), s);
            }
        }
    }

    private static float ReadFloat(TensorView t, long i) => t.Type switch
    {
        GgmlType.F32 => ((float*)t.Data)[i],
        GgmlType.F16 => HalfBits.ToSingle(((ushort*)t.Data)[i]),
        _ => HalfBits.BFloat16ToSingle(((ushort*)t.Data)[i]),
    };

    public void Dispose()
    {
        if (_codes != null)
        {
            if (_ownsMemory)
            {
                NativeMemory.AlignedFree(_codes);
                NativeMemory.AlignedFree(_scales);
                NativeMemory.AlignedFree(_rowScaleSlot);
            }

            _codes = null;
            _scales = null;
            _rowScaleSlot = null;
            _rowScales = null;
        }
    }
}
