namespace Halo.Testing;

/// <summary>Where the repository and the shared test data (../shared beside the clone) are.</summary>
internal static class TestPaths
{
    /// <summary>The directory holding Halo.Appliance.sln.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The shared folder beside the repository (CI lays a copy there); HALO_SHARED_DIR overrides.</summary>
    public static string SharedDir { get; } =
        Environment.GetEnvironmentVariable("HALO_SHARED_DIR") is { Length: > 0 } dir
            ? dir
            : Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    public static string Llama3TokenizerDir => Path.Combine(SharedDir, "tokenizers", "llama3");

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Halo.Appliance.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Halo.Appliance.sln not found above {AppContext.BaseDirectory}");
    }
}

/// <summary>A temporary directory removed when disposed.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("halo-test-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A process under test may still hold a file; the OS temp cleaner takes the rest.
        }
    }
}
