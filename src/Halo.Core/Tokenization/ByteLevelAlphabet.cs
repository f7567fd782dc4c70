namespace Halo.Core.Tokenization;

/// <summary>
/// GPT-2's reversible byte-to-unicode map: every byte becomes one printable character so that a BPE
/// vocabulary can be stored as strings. Printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100 onwards in byte order (space becomes 'Ġ', newline 'Ċ').
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The character that stands for each byte.</summary>
    public static readonly char[] ByteToChar = new char[256];

    /// <summary>The bytes in the order GPT-2 (and LLaMA-3) number the single-byte tokens: printables first.</summary>
    public static readonly byte[] TokenOrder = new byte[256];

    // Every alphabet character is below U+0144; -1 marks characters outside the alphabet.
    private static readonly short[] CharToByte = new short[0x144];

    static ByteLevelAlphabet()
    {
        Array.Fill(CharToByte, (short)-1);
        var order = 0;
        for (var b = 0; b < 256; b++)
        {
            if (IsPrintable(b))
            {
                ByteToChar[b] = (char)b;
                TokenOrder[order++] = (byte)b;
            }
        }

        var shifted = 0;
        for (var b = 0; b < 256; b++)
        {
            if (!IsPrintable(b))
            {
                ByteToChar[b] = (char)(256 + shifted++);
                TokenOrder[order++] = (byte)b;
            }
        }

        for (var b = 0; b < 256; b++)
        {
            CharToByte[ByteToChar[b]] = (short)b;
        }
    }

    /// <summary>The byte a character stands for, or -1 when it is not in the alphabet.</summary>
    public static int ToByte(char c) => c < CharToByte.Length ? CharToByte[c] : -1;

    private static bool IsPrintable(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
}
