using Halo.Core.Models;

namespace Halo.Server.Inference;

/// <summary>
/// The model behind <c>--demo</c>: Halo.Core's synthetic "tiny" BitNet model (random weights, byte-level
/// vocabulary, LLaMA-3 chat template), written once into the user's cache directory and reused after.
/// </summary>
internal static class DemoModel
{
    public const string Name = "demo";

    private const string FileName = "demo-tiny-tq2_0.gguf";

    /// <summary><c>$XDG_CACHE_HOME/halo</c>, else <c>~/.cache/halo</c>.</summary>
    public static string CacheDirectory()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "halo");
    }

    /// <summary>The demo model's path, synthesizing it first if it is not there yet.</summary>
    public static string EnsureCreated(TextWriter log)
    {
        string directory = CacheDirectory();
        string path = Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            log.WriteLine($"halo-server: demo model {path} (RANDOM WEIGHTS: output is gibberish)");
            return path;
        }

        Directory.CreateDirectory(directory);
        log.WriteLine($"halo-server: synthesizing the demo model into {path}");
        log.WriteLine("halo-server: it has RANDOM WEIGHTS: every part of the stack is real, but its output is gibberish");
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", seed: 1), path);
        return path;
    }
}
