namespace Halo.Core.Formats;

/// <summary>Opens a model of any supported format, chosen by content rather than by file name.</summary>
public static class ModelFile
{
    /// <summary>
    /// A GGUF file (magic "GGUF"), a Halo <c>.h1b</c> file, or a Hugging Face directory with <c>config.json</c>
    /// (safetensors). The model is validated against its config; any defect is an <see cref="InvalidModelException"/>.
    /// </summary>
    public static IModelSource Open(string path)
    {
        if (Directory.Exists(path))
        {
            return SafetensorsModel.Open(path);
        }

        if (!File.Exists(path))
        {
            throw new InvalidModelException(path, "no such file or directory");
        }

        Span<byte> head = stackalloc byte[8];
        int read;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
            read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidModelException(path, $"cannot read the file: {e.Message}", e);
        }

        if (GgufFile.HasMagic(head[..read]))
        {
            return GgufModel.Open(path);
        }

        if (H1bFormat.HasMagic(head[..read]) || H1bFormat.HasLegacyMagic(head[..read]))
        {
            return H1bModel.Open(path);
        }

        throw new InvalidModelException(path, read < 4
            ? $"truncated: {read} bytes is too short for any model format"
            : "unknown model format (expected a GGUF or .h1b file, or a safetensors directory)");
    }
}
