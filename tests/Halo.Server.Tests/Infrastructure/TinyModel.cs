using Halo.Core.Models;

namespace Halo.Server.Tests.Infrastructure;

/// <summary>The synthetic tiny BitNet model (random weights, byte-level vocabulary) every server test serves,
/// written once per test run.</summary>
internal static class TinyModel
{
    private static readonly Lazy<string> File = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("halo-server-tests-").FullName;
        string path = System.IO.Path.Combine(dir, "tiny.gguf");
        SyntheticModel.Write(SyntheticModelSpec.FromPreset("tiny", seed: 7), path);
        return path;
    });

    public static string Path => File.Value;

    public const string Id = "tiny";
}
