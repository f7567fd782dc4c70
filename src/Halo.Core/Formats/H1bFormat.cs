using System.Buffers.Binary;
using System.Text;
using Halo.Core.Tokenization;

namespace Halo.Core.Formats;

/// <summary>Constants and shared encoding of Halo's <c>.h1b</c> format; the specification is H1b.md beside this file.</summary>
public static class H1bFormat
{
    /// <summary>"HALOH1B\0".</summary>
    public static ReadOnlySpan<byte> Magic => "HALOH1B\0"u8;

    /// <summary>1bit-systems' older, unrelated .h1b files start with "H1B\0".</summary>
    public static ReadOnlySpan<byte> LegacyMagic => "H1B\0"u8;

    public const uint Version = 1;
    public const int Alignment = 4096;
    public const int PreambleBytes = 16;
    public const int SectionEntryBytes = 32;
    public const int MaxSections = 16;

    public const uint HeaderSection = 1;
    public const uint VocabularySection = 2;
    public const uint TensorDataSection = 3;

    /// <summary>Tensor layouts: "ggml" is ggml's own block layout for the tensor's type (row-major rows of blocks).</summary>
    public const string GgmlLayout = "ggml";

    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= 8 && head[..8].SequenceEqual(Magic);

    public static bool HasLegacyMagic(ReadOnlySpan<byte> head) => head.Length >= 4 && head[..4].SequenceEqual(LegacyMagic);

    internal static long AlignUp(long value) => (value + Alignment - 1) / Alignment * Alignment;

    /// <summary>Vocabulary section: u32 n, n x (u32 length, UTF-8); u32 t (0 or n), t x i32 token type; u32 m, m x (u32 length, UTF-8).</summary>
    internal static byte[] EncodeVocabulary(TokenizerModel t)
    {
        using var s = new MemoryStream();
        Span<byte> four = stackalloc byte[4];
        void U32(uint v, Span<byte> buffer)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, v);
            s.Write(buffer);
        }

        void Strings(IReadOnlyList<string> list, Span<byte> buffer)
        {
            U32((uint)list.Count, buffer);
            foreach (string item in list)
            {
                byte[] bytes = Encoding.UTF8.GetBytes(item);
                U32((uint)bytes.Length, buffer);
                s.Write(bytes);
            }
        }

        Strings(t.Tokens, four);
        IReadOnlyList<int> types = t.TokenTypes ?? [];
        U32((uint)types.Count, four);
        foreach (int type in types)
        {
            U32((uint)type, four);
        }

        Strings(t.Merges, four);
        return s.ToArray();
    }
}
