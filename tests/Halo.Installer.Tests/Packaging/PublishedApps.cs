using System.Reflection;
using Halo.Testing;

namespace Halo.Installer.Tests.Packaging;

/// <summary>
/// The real `halo` CLI and `halo-server` daemon of this build, published once per test run (framework-dependent,
/// from the already built outputs, so it takes seconds) into one directory laid out like the installer's
/// payload: the apphosts `halo` and `halo-server` side by side with their shared assemblies.
/// The self-contained ReadyToRun publish the installer does by default is the same command plus
/// `-r linux-x64 --self-contained -p:PublishReadyToRun=true`; it takes minutes and is measured, not tested, here.
/// </summary>
internal static class PublishedApps
{
    private static readonly Lazy<string> Dir = new(Publish);

    /// <summary>The directory with both apps (removed when the test process exits).</summary>
    public static string Path => Dir.Value;

    public static string Halo => System.IO.Path.Combine(Path, "halo");

    public static string Server => System.IO.Path.Combine(Path, "halo-server");

    /// <summary>Release on CI (dotnet test -c Release), Debug in a developer's loop: publish what was built.</summary>
    public static string Configuration { get; } =
        typeof(PublishedApps).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    private static string Publish()
    {
        var dir = new TempDir();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => dir.Dispose();
        string dotnet = ProcessRunner.Require("dotnet", "the .NET SDK");
        foreach (string project in new[] { "installer/Halo.Installer/Halo.Installer.csproj", "src/Halo.Server/Halo.Server.csproj" })
        {
            ProcessResult result = ProcessRunner.Run(
                dotnet,
                ["publish", System.IO.Path.Combine(TestPaths.RepoRoot, project), "-c", Configuration, "--no-build", "-o", dir.Path, "-nologo"],
                TimeSpan.FromMinutes(5));
            if (result.ExitCode != 0)
            {
                throw new InvalidOperationException($"dotnet publish {project} --no-build failed:\n{result.Output}");
            }
        }

        return dir.Path;
    }
}
