using Halo.Core.Models;

namespace Halo.Testing;

/// <summary>
/// The synthetic tiny BitNet model (random weights, byte-level vocabulary) that the daemon tests serve, written once
/// per test process into a temporary directory that is removed when the process exits.
/// </summary>
internal static class TinyModel
{
    public const string Id = "tiny";

    private static readonly Lazy<string> File = new(Write);

    public static string Path => File.Value;

    private static string Write()
    {
        var dir = new TempDir();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => dir.Dispose();
        string path = dir.File("tiny.gguf");
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", seed: 7), path);
        return path;
    }
}
