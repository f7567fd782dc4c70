using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace Halo.Engine.Weights;

/// <summary>
/// A 128-bit repack cache key: the file name (32 hex digits) and the header field (16 bytes, little-endian, low half
/// first) of one entry. Two 64-bit halves rather than a <see cref="UInt128"/>: ReadyToRun leaves every method with a
/// UInt128 in its signature or locals to the JIT, which put a dozen compilations on the daemon's start path.
/// </summary>
/// <remarks>
/// The halves are two seeded XxHash64s of the key material. XxHash64 is scalar code that ReadyToRun precompiles, where
/// XxHash128 and XxHash3 are vectorised code it leaves to the JIT: hashing the key material with XxHash128 cost the
/// daemon's start 4-9 ms, almost all of it compiling and running first-tier code once.
/// </remarks>
public readonly record struct RepackKey(ulong Low, ulong High)
{
    private const long HighSeed = unchecked((long)0x9E3779B97F4A7C15);

    public static RepackKey Of(ReadOnlySpan<byte> material) =>
        new(XxHash64.HashToUInt64(material), XxHash64.HashToUInt64(material, HighSeed));

    /// <summary>The key of all that <paramref name="writeMaterial"/> writes, hashed at once.</summary>
    public static RepackKey Of(Action<BinaryWriter> writeMaterial)
    {
        using var material = new MemoryStream();
        using (var writer = new BinaryWriter(material, Encoding.UTF8, leaveOpen: true))
        {
            writeMaterial(writer);
        }

        return Of(material.GetBuffer().AsSpan(0, (int)material.Length));
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
