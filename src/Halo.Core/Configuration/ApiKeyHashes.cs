using System.Security.Cryptography;
using System.Text;

namespace Halo.Core.Configuration;

/// <summary>
/// API keys are stored only as SHA-256 hashes (hex, optionally <c>sha256:</c>-prefixed): a leaked config or
/// key file does not leak a usable key. Presented keys are hashed and compared in constant time.
/// </summary>
public static class ApiKeyHashes
{
    /// <summary>The hash of a key as configuration stores it (lower-case hex).</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public static bool TryParseHash(string text, out byte[] hash)
    {
        hash = [];
        string hex = text.Trim();
        if (hex.StartsWith("sha256:", StringComparison.OrdinalIgnoreCase))
        {
            hex = hex["sha256:".Length..];
        }

        if (hex.Length != 64)
        {
            return false;
        }

        try
        {
            hash = Convert.FromHexString(hex);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>All configured hashes: the list plus the key file. Problems are added to <paramref name="errors"/>.</summary>
    public static List<byte[]> Load(AuthOptions auth, List<string> errors)
    {
        var hashes = new List<byte[]>();
        foreach (string text in auth.ApiKeys)
        {
            if (TryParseHash(text, out byte[] hash))
            {
                hashes.Add(hash);
            }
        }

        if (auth.ApiKeyFile.Length > 0)
        {
            hashes.AddRange(ReadFile(auth.ApiKeyFile, errors));
        }

        return hashes;
    }

    /// <summary>One hash per line; blank lines and lines starting with # are skipped.</summary>
    public static List<byte[]> ReadFile(string path, List<string> errors)
    {
        var hashes = new List<byte[]>();
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add($"auth.api_key_file: {path}: {e.Message}");
            return hashes;
        }

        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            // sha256sum prints "HASH  -": take the first field.
            int space = line.IndexOfAny([' ', '\t']);
            string field = space > 0 ? line[..space] : line;
            if (TryParseHash(field, out byte[] hash))
            {
                hashes.Add(hash);
            }
            else
            {
                errors.Add($"auth.api_key_file: {path}:{i + 1}: not a SHA-256 hex hash");
            }
        }

        return hashes;
    }

    /// <summary>Whether <paramref name="presentedKey"/> hashes to one of <paramref name="hashes"/>; every hash is
    /// compared, each in constant time, so timing tells nothing about which or how much matched.</summary>
    public static bool Matches(ReadOnlySpan<char> presentedKey, IReadOnlyList<byte[]> hashes)
    {
        Span<byte> utf8 = presentedKey.Length <= 256 ? stackalloc byte[Encoding.UTF8.GetMaxByteCount(presentedKey.Length)] : new byte[Encoding.UTF8.GetMaxByteCount(presentedKey.Length)];
        int length = Encoding.UTF8.GetBytes(presentedKey, utf8);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(utf8[..length], hash);
        bool match = false;
        foreach (byte[] candidate in hashes)
        {
            match |= CryptographicOperations.FixedTimeEquals(hash, candidate);
        }

        return match;
    }
}
