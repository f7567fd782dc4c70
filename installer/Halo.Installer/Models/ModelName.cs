using System.Text.RegularExpressions;

namespace Halo.Installer.Models;

/// <summary>Model names are directory names under the models dir: plain, so no name can escape it.</summary>
public static partial class ModelName
{
    public static bool IsValid(string name) => NamePattern().IsMatch(name);

    public static void Validate(string name)
    {
        if (!IsValid(name))
        {
            throw new ModelStoreException(
                $"'{name}' is not a valid model name: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit");
        }
    }

    /// <summary>A name derived from a URL's file name: "ggml-model-i2_s.gguf" -> "ggml-model-i2_s".</summary>
    public static string FromUrl(Uri url)
    {
        string file = Uri.UnescapeDataString(url.Segments.Length > 0 ? url.Segments[^1] : "").Trim('/');
        string stem = Path.GetFileNameWithoutExtension(file);
        string cleaned = InvalidChars().Replace(stem, "-").Trim('-', '.', '_');
        if (cleaned.Length == 0)
        {
            throw new ModelStoreException($"cannot derive a model name from {url}; pass --name");
        }

        return cleaned.Length > 128 ? cleaned[..128] : cleaned;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("[^A-Za-z0-9._-]+")]
    private static partial Regex InvalidChars();
}

/// <summary>SHA-256 digests as lower-case hex strings, the form manifests and catalogs use.</summary>
public static class Sha256Hex
{
    public static bool IsValid(string? hex)
    {
        if (hex is null || hex.Length != 64)
        {
            return false;
        }

        foreach (char c in hex)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Normalises user input ("ABC..." or "sha256:abc...") or returns null when it is not a digest.</summary>
    public static string? Parse(string? text)
    {
        if (text is null)
        {
            return null;
        }

        string trimmed = text.Trim().Trim('"');
        if (trimmed.StartsWith("sha256:", StringComparison.OrdinalIgnoreCase))
        {
            trimmed = trimmed[7..];
        }

        return IsValid(trimmed) ? trimmed.ToLowerInvariant() : null;
    }
}
