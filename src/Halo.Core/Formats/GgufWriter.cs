using System.Buffers.Binary;
using System.Text;

namespace Halo.Core.Formats;

/// <summary>
/// Streams a GGUF v3 file: declare metadata and tensors, call <see cref="WriteHeader"/>, then append each
/// tensor's bytes in declaration order with <see cref="WriteTensorData"/> (in as many chunks as suits the
/// caller; padding between tensors is written for you) and <see cref="Finish"/>. Nothing is buffered beyond the
/// header, so multi-GiB models are written in constant memory.
/// </summary>
public sealed class GgufWriter
{
    private static readonly byte[] Zeros = new byte[256];
    private readonly Stream _out;
    private readonly List<(string Name, GgmlType Type, long[] Shape, long Bytes, long Offset)> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private long _nextOffset;
    private bool _headerWritten;
    private int _current;
    private long _currentWritten;
    private bool _finished;

    public GgufWriter(Stream output)
    {
        _out = output;
    }

    public GgufMetadata Metadata { get; } = new();

    public uint Alignment
    {
        get => Metadata.TryGetValue(GgufFile.AlignmentKey, out GgufValue v) && v.Value is uint a ? a : GgufFile.DefaultAlignment;
        set
        {
            if (value == 0 || (value & (value - 1)) != 0)
            {
                throw new ArgumentException("alignment must be a power of two", nameof(value));
            }

            Metadata.Set(GgufFile.AlignmentKey, value);
        }
    }

    /// <summary>Declares a tensor (shape in ggml order, innermost first); returns its byte size.</summary>
    public long AddTensor(string name, GgmlType type, ReadOnlySpan<long> shape)
    {
        if (_headerWritten)
        {
            throw new InvalidOperationException("tensors must be declared before WriteHeader");
        }

        if (!_names.Add(name))
        {
            throw new ArgumentException($"tensor '{name}' declared twice", nameof(name));
        }

        if (shape.Length is 0 or > GgufFile.MaxDimensions || !GgmlTypeInfo.TryTensorBytes(type, shape, out long bytes))
        {
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape.ToArray())}] is not valid for {type}", nameof(shape));
        }

        _tensors.Add((name, type, shape.ToArray(), bytes, 0));
        return bytes;
    }

    /// <summary>Writes magic, version, metadata and the tensor table, padded to the alignment.</summary>
    public void WriteHeader()
    {
        if (_headerWritten)
        {
            throw new InvalidOperationException("header already written");
        }

        _headerWritten = true;
        uint alignment = Alignment;
        long offset = 0;
        for (int i = 0; i < _tensors.Count; i++)
        {
            _tensors[i] = _tensors[i] with { Offset = offset };
            offset = GgufFile.AlignUp(offset + _tensors[i].Bytes, alignment);
        }

        var header = new HeaderBuffer();
        header.U32(GgufFile.Magic);
        header.U32(GgufFile.CurrentVersion);
        header.U64((ulong)_tensors.Count);
        header.U64((ulong)Metadata.Count);
        foreach (string key in Metadata.Keys)
        {
            GgufValue value = Metadata[key];
            header.String(key);
            header.U32((uint)value.Type);
            header.Value(value);
        }

        foreach ((string name, GgmlType type, long[] shape, _, long tensorOffset) in _tensors)
        {
            header.String(name);
            header.U32((uint)shape.Length);
            foreach (long d in shape)
            {
                header.U64((ulong)d);
            }

            header.U32((uint)type);
            header.U64((ulong)tensorOffset);
        }

        header.PadTo(alignment);
        header.CopyTo(_out);
        _nextOffset = 0;
        AdvanceToTensorWithData();
    }

    /// <summary>Appends bytes of the current tensor; may be called in chunks, may cross into the next tensor.</summary>
    public void WriteTensorData(ReadOnlySpan<byte> data)
    {
        if (!_headerWritten || _finished)
        {
            throw new InvalidOperationException("WriteTensorData goes between WriteHeader and Finish");
        }

        while (!data.IsEmpty)
        {
            if (_current >= _tensors.Count)
            {
                throw new InvalidOperationException($"{data.Length} bytes written past the last tensor");
            }

            long left = _tensors[_current].Bytes - _currentWritten;
            int n = (int)Math.Min(left, data.Length);
            _out.Write(data[..n]);
            _currentWritten += n;
            data = data[n..];
            if (_currentWritten == _tensors[_current].Bytes)
            {
                _current++;
                _currentWritten = 0;
                AdvanceToTensorWithData();
            }
        }
    }

    /// <summary>The tensor whose bytes <see cref="WriteTensorData"/> expects next (null when all are written).</summary>
    public string? CurrentTensor => _current < _tensors.Count ? _tensors[_current].Name : null;

    public void Finish()
    {
        if (!_headerWritten)
        {
            throw new InvalidOperationException("WriteHeader was not called");
        }

        if (_current < _tensors.Count)
        {
            throw new InvalidOperationException($"tensor '{_tensors[_current].Name}' is missing {_tensors[_current].Bytes - _currentWritten} bytes");
        }

        _finished = true;
        _out.Flush();
    }

    // Pads up to the current tensor's offset; zero-byte tensors are skipped.
    private void AdvanceToTensorWithData()
    {
        while (_current < _tensors.Count)
        {
            long target = _tensors[_current].Offset;
            for (long pad = target - _nextOffset; pad > 0; pad -= Math.Min(pad, Zeros.Length))
            {
                _out.Write(Zeros, 0, (int)Math.Min(pad, Zeros.Length));
            }

            _nextOffset = target + _tensors[_current].Bytes;
            if (_tensors[_current].Bytes > 0)
            {
                return;
            }

            _current++;
        }
    }

    private sealed class HeaderBuffer
    {
        private readonly MemoryStream _buffer = new();

        public void U32(uint v)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, v);
            _buffer.Write(b);
        }

        public void U64(ulong v)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, v);
            _buffer.Write(b);
        }

        public void String(string s)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(s);
            U64((ulong)bytes.Length);
            _buffer.Write(bytes);
        }

        public void Value(GgufValue v)
        {
            switch (v.Value)
            {
                case byte x: _buffer.WriteByte(x); break;
                case sbyte x: _buffer.WriteByte((byte)x); break;
                case ushort x: Small(x, 2); break;
                case short x: Small((ushort)x, 2); break;
                case uint x: U32(x); break;
                case int x: U32((uint)x); break;
                case ulong x: U64(x); break;
                case long x: U64((ulong)x); break;
                case float x: U32(BitConverter.SingleToUInt32Bits(x)); break;
                case double x: U64(BitConverter.DoubleToUInt64Bits(x)); break;
                case bool x: _buffer.WriteByte(x ? (byte)1 : (byte)0); break;
                case string x: String(x); break;
                case Array a: ArrayBody(v.ElementType, a); break;
                default: throw new ArgumentException($"cannot write a GGUF value of {v.Value.GetType().Name}");
            }
        }

        public void PadTo(uint alignment)
        {
            while (_buffer.Length % alignment != 0)
            {
                _buffer.WriteByte(0);
            }
        }

        public void CopyTo(Stream s) => _buffer.WriteTo(s);

        private void Small(ushort x, int n)
        {
            Span<byte> b = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(b, x);
            _buffer.Write(b[..n]);
        }

        private void ArrayBody(GgufValueType element, Array a)
        {
            U32((uint)element);
            U64((ulong)a.Length);
            switch (a)
            {
                case string[] strings:
                    foreach (string s in strings)
                    {
                        String(s);
                    }

                    break;
                case GgufValue[] nested:
                    foreach (GgufValue n in nested)
                    {
                        ArrayBody(n.ElementType, (Array)n.Value);
                    }

                    break;
                case bool[] bools:
                    foreach (bool b in bools)
                    {
                        _buffer.WriteByte(b ? (byte)1 : (byte)0);
                    }

                    break;
                default:
                    WriteNumbers(a);
                    break;
            }
        }

        private void WriteNumbers(Array a)
        {
            switch (a)
            {
                case byte[] x: _buffer.Write(x); break;
                case sbyte[] x: _buffer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan())); break;
                case ushort[] x: _buffer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan())); break;
                case short[] x: _buffer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan())); break;
                case uint[] x: _buffer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan())); break;
                case int[] x: _buffer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan())); break;
                case ulong[] x: _buffer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan())); break;
                case long[] x: _buffer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan())); break;
                case float[] x: _buffer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan())); break;
                case double[] x: _buffer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan())); break;
                default: throw new ArgumentException($"cannot write a GGUF array of {a.GetType().Name}");
            }
        }
    }
}
