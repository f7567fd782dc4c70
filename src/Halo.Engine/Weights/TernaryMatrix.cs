using System.Runtime.InteropServices;
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

    private byte* _codes;    // [tiles, blocks, TileRows, 64]
    private float* _scales;  // [tiles, blocks, TileRows] block scale d (rows past Rows have 0)
    private float* _rowScales; // [tiles * TileRows] the scale all of a row's blocks share, or null (see RowScales)

    private TernaryMatrix(string name, int rows, int cols, float tensorScale)
    {
        Name = name;
        Rows = rows;
        Cols = cols;
        Blocks = cols / BlockSize;
        Tiles = (rows + TileRows - 1) / TileRows;
        TensorScale = tensorScale;
        nuint codeBytes = (nuint)Tiles * (nuint)Blocks * TileRows * BlockBytes;
        _codes = (byte*)NativeMemory.AlignedAlloc(codeBytes, 64);
        _scales = (float*)NativeMemory.AlignedAlloc((nuint)Tiles * (nuint)Blocks * TileRows * sizeof(float), 64);
        NativeMemory.Clear(_codes, codeBytes);
        NativeMemory.Clear(_scales, (nuint)Tiles * (nuint)Blocks * TileRows * sizeof(float));
    }

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

    /// <summary>
    /// Repacks a GGUF tensor (TQ2_0, TQ1_0, or F32/F16/BF16 master weights, which are ternarized per tensor with
    /// s = mean|W|) of ggml shape [cols, rows].
    /// </summary>
    public static TernaryMatrix FromTensor(string file, TensorView tensor, float tensorScale)
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

        var m = new TernaryMatrix(tensor.Name, (int)rows, (int)cols, tensorScale);
        try
        {
            switch (tensor.Type)
            {
                case GgmlType.TQ2_0:
                    RequireBytes(file, tensor, rows * (cols / BlockSize) * 66);
                    m.CopyTq2(tensor.Data);
                    break;
                case GgmlType.TQ1_0:
                    RequireBytes(file, tensor, rows * (cols / BlockSize) * 54);
                    Parallel.For(0, m.Tiles, t => m.RepackTile(t, tensor.Data, 54, &DecodeTq1Block));
                    break;
                case GgmlType.F32:
                case GgmlType.F16:
                case GgmlType.BF16:
                    m.Ternarize(file, tensor);
                    break;
                default:
                    throw new InvalidModelException(file, $"tensor '{tensor.Name}' has type {tensor.Type}, which is not a ternary weight type this engine reads (TQ2_0, TQ1_0, F32, F16, BF16)");
            }
        }
        catch
        {
            m.Dispose();
            throw;
        }

        m.FindRowScales();
        return m;
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

        m.FindRowScales();
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

    private void FindRowScales()
    {
        var rowScales = (float*)NativeMemory.AlignedAlloc((nuint)Tiles * TileRows * sizeof(float), 64);
        for (int row = 0; row < Tiles * TileRows; row++)
        {
            if (!TryRowScale(row, out rowScales[row]))
            {
                NativeMemory.AlignedFree(rowScales);
                return;
            }
        }

        _rowScales = rowScales;
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

    // TQ2_0 blocks are qs[64] then f16 d: the codes already have the kernel's in-block order.
    private void CopyTq2(byte* source)
    {
        Parallel.For(0, Tiles, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, tile => CopyTq2Tile(source, tile));
    }

    private void CopyTq2Tile(byte* source, int tile)
    {
        for (int r = tile * TileRows; r < Math.Min(Rows, (tile + 1) * TileRows); r++)
        {
            byte* src = source + (long)r * Blocks * 66;
            long index = (long)(r / TileRows) * Blocks * TileRows + r % TileRows;
            for (int b = 0; b < Blocks; b++, src += 66, index += TileRows)
            {
                Buffer.MemoryCopy(src, _codes + index * BlockBytes, BlockBytes, BlockBytes);
                _scales[index] = HalfBits.ToSingle(*(ushort*)(src + 64));
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

    private void Ternarize(string file, TensorView tensor)
    {
        long n = (long)Rows * Cols;
        RequireBytes(file, tensor, n * (tensor.Type == GgmlType.F32 ? 4 : 2));
        double sumAbs = 0;
        for (long i = 0; i < n; i++)
        {
            sumAbs += Math.Abs(ReadFloat(tensor, i));
        }

        float s = (float)Math.Max(sumAbs / n, 1e-5);
        Span<sbyte> block = stackalloc sbyte[BlockSize];
        for (int r = 0; r < Rows; r++)
        {
            for (int b = 0; b < Blocks; b++)
            {
                for (int e = 0; e < BlockSize; e++)
                {
                    float w = ReadFloat(tensor, (long)r * Cols + b * BlockSize + e);
                    block[e] = (sbyte)Math.Clamp(MathF.Round(w / s), -1f, 1f);
                }

                StoreBlock(r, b, block, s);
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
            NativeMemory.AlignedFree(_codes);
            NativeMemory.AlignedFree(_scales);
            NativeMemory.AlignedFree(_rowScales);
            _codes = null;
            _scales = null;
            _rowScales = null;
        }
    }
}
