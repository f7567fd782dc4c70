using System.Buffers.Binary;
using System.IO.Hashing;

namespace Halo.Engine.Weights;

/// <summary>
/// A 128-bit repack cache key: the file name (32 hex digits) and the header field (16 bytes, little-endian, low half
/// first) of one entry. Two 64-bit halves rather than a <see cref="UInt128"/>: ReadyToRun leaves every method with a
/// UInt128 in its signature or locals to the JIT, which put a dozen compilations on the daemon's start path.
/// </summary>
public readonly record struct RepackKey(ulong Low, ulong High)
{
    /// <summary>The hash's 128-bit value (its canonical form is big-endian, high half first).</summary>
    public static RepackKey Of(XxHash128 hash)
    {
        Span<byte> digest = stackalloc byte[16];
        hash.GetCurrentHash(digest);
        return new RepackKey(BinaryPrimitives.ReadUInt64BigEndian(digest[8..]), BinaryPrimitives.ReadUInt64BigEndian(digest));
    }

    public static RepackKey Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt64LittleEndian(source), BinaryPrimitives.ReadUInt64LittleEndian(source[8..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Low);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], High);
    }

    public override string ToString() => $"{High:x16}{Low:x16}";
}
