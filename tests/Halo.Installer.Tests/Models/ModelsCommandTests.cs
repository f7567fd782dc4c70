using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Halo.Installer.Models;
using Halo.Testing;

namespace Halo.Installer.Tests.Models;

/// <summary>End-to-end: the real CLI process against the fault-injecting file server.</summary>
public sealed class ModelsCommandTests : IAsyncLifetime
{
    private static readonly byte[] Weights = FaultyFileServer.RandomBytes(700_000, 21);

    private readonly TempDir _temp = new();
    private FaultyFileServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await FaultyFileServer.StartAsync();
        _server.Add("org/tiny/resolve/main/tiny.gguf", Weights);
        File.WriteAllText(_temp.File("catalog.yaml"), $"""
            default: tiny
            models:
              tiny:
                format: gguf
                license: MIT
                repo: org/tiny
                files:
                  - path: tiny.gguf
                    sha256: {FaultyFileServer.Sha256(Weights)}
            """);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _temp.Dispose();
    }

    private string ModelsDir => _temp.File("models");

    private Dictionary<string, string> Env => new()
    {
        [ModelsEnvironment.DirVariable] = ModelsDir,
        [ModelsEnvironment.EndpointVariable] = _server.BaseUri.AbsoluteUri,
        [ModelsEnvironment.CatalogVariable] = _temp.File("catalog.yaml"),
    };

    [Fact]
    public async Task Pull_List_Verify_Rm_FullLifecycleThroughTheRealCli()
    {
        HaloCli.Result pull = await HaloCli.RunAsync(Env, "models", "pull", "tiny");
        Assert.True(pull.ExitCode == 0, pull.ToString());
        Assert.Contains("tiny.gguf: downloading", pull.Stdout); // plain progress lines: stdout is not a terminal
        Assert.Contains("(catalog)", pull.Stdout);
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(ModelsDir, "tiny", "tiny.gguf")));
        Assert.True(File.Exists(Path.Combine(ModelsDir, "tiny", ModelSbom.FileName)));

        HaloCli.Result list = await HaloCli.RunAsync(Env, "models", "list", "--json");
        Assert.Equal(0, list.ExitCode);
        JsonNode model = JsonNode.Parse(list.Stdout)!["models"]![0]!;
        Assert.Equal("tiny", (string?)model["name"]);
        Assert.Equal("verified", (string?)model["status"]);
        Assert.Equal(Weights.Length, (long)model["size"]!);

        HaloCli.Result table = await HaloCli.RunAsync(Env, "models", "list");
        Assert.Contains("verified", table.Stdout);

        HaloCli.Result verify = await HaloCli.RunAsync(Env, "models", "verify", "tiny");
        Assert.True(verify.ExitCode == 0, verify.ToString());

        string path = Path.Combine(ModelsDir, "tiny", "tiny.gguf");
        byte[] bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
        HaloCli.Result tampered = await HaloCli.RunAsync(Env, "models", "verify", "tiny");
        Assert.Equal(1, tampered.ExitCode);
        Assert.Contains("tiny.gguf: sha256 is", tampered.Stderr);
        Assert.Contains("FAILED", tampered.Stdout);

        HaloCli.Result rm = await HaloCli.RunAsync(Env, "models", "rm", "tiny");
        Assert.Equal(0, rm.ExitCode);
        Assert.False(Directory.Exists(Path.Combine(ModelsDir, "tiny")));

        HaloCli.Result rmAgain = await HaloCli.RunAsync(Env, "models", "rm", "tiny");
        Assert.Equal(1, rmAgain.ExitCode);
        Assert.Contains("no model named 'tiny'", rmAgain.Stderr);
    }

    [Fact]
    public async Task Pull_KilledWithSigkillMidDownload_RerunResumesToAVerifiedFile()
    {
        // 40 MiB in 16 MiB parts, one at a time: the first part comes at full speed, the rest at 2 MiB/s, so the
        // kill lands after the first part is on disk and while the second is in flight.
        byte[] big = FaultyFileServer.RandomBytes(40 << 20, 5);
        Uri url = _server.Add("files/big.gguf", big);
        string sha = FaultyFileServer.Sha256(big);
        _server.BytesPerSecond = 2L << 20;
        _server.ThrottleFrom = 16L << 20;
        string state = Path.Combine(ModelsDir, "big", "big.gguf.partial.state");

        using (Process first = HaloCli.Start(Env, "models", "pull", url.AbsoluteUri, "--sha256", sha, "--parallel", "1"))
        {
            var deadline = Stopwatch.StartNew();
            while (!PartsDone(state) && !first.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(50);
            }

            Assert.False(first.HasExited, "the first pull finished before it could be killed");
            first.Kill(); // SIGKILL: no handler, no cleanup
            await first.WaitForExitAsync();
        }

        Assert.False(File.Exists(Path.Combine(ModelsDir, "big", "big.gguf")), "a file appeared under the final name before verification");
        Assert.True(File.Exists(Path.Combine(ModelsDir, "big", "big.gguf.partial")));
        int requestsBeforeResume = _server.Requests;

        _server.BytesPerSecond = 0;
        HaloCli.Result second = await HaloCli.RunAsync(Env, "models", "pull", url.AbsoluteUri, "--sha256", sha);

        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Contains("resumed", second.Stdout);
        Assert.Contains("resuming", second.Stderr);
        Assert.Equal(sha, FaultyFileServer.Sha256(File.ReadAllBytes(Path.Combine(ModelsDir, "big", "big.gguf"))));
        Assert.DoesNotContain(_server.Log, line => int.Parse(line.Split(' ')[0]) > requestsBeforeResume && line.Contains("bytes=0-16777215", StringComparison.Ordinal));
        Assert.Contains(_server.Log, line => int.Parse(line.Split(' ')[0]) > requestsBeforeResume && line.Contains("bytes=16777216-", StringComparison.Ordinal));
        Assert.False(File.Exists(state));
    }

    private static bool PartsDone(string statePath)
    {
        try
        {
            return File.Exists(statePath) && JsonNode.Parse(File.ReadAllText(statePath))?["done"]?.AsArray().Count > 0;
        }
        catch (Exception ex) when (ex is IOException or JsonException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Pull_NotFound_ExitsOneWithOneClearLine()
    {
        HaloCli.Result result = await HaloCli.RunAsync(Env, "models", "pull", new Uri(_server.BaseUri, "nothing/here.gguf").AbsoluteUri);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("HTTP 404", result.Stderr);
        Assert.DoesNotContain("Unhandled exception", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Fact]
    public async Task Pull_ServerCorruptsBytes_ExitsOneAndNothingUnderTheFinalName()
    {
        _server.FaultFor = (_, path, _) => path.EndsWith("tiny.gguf", StringComparison.Ordinal) ? Fault.WrongBytes : Fault.None;

        HaloCli.Result result = await HaloCli.RunAsync(Env, "models", "pull", "tiny");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("sha256 mismatch", result.Stderr);
        Assert.False(File.Exists(Path.Combine(ModelsDir, "tiny", "tiny.gguf")));
        Assert.False(File.Exists(Path.Combine(ModelsDir, "tiny", ModelManifest.FileName)));
    }

    [Fact]
    public async Task Pull_MissingArgument_IsAUsageError()
    {
        HaloCli.Result result = await HaloCli.RunAsync(Env, "models", "pull");

        Assert.Equal(2, result.ExitCode);
    }

    [Fact]
    public async Task Verify_NoSuchModel_ExitsOne()
    {
        HaloCli.Result result = await HaloCli.RunAsync(Env, "models", "verify", "ghost");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no model named 'ghost'", result.Stderr);
    }

    [RootFact]
    public async Task Pull_DiskFull_ClearErrorAndNothingUnderTheFinalName()
    {
        string mount = _temp.File("small");
        Directory.CreateDirectory(mount);
        HaloCli.Result mounted = await Shell("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mount);
        Assert.True(mounted.ExitCode == 0, mounted.ToString());
        try
        {
            var env = Env;
            env[ModelsEnvironment.DirVariable] = mount;

            HaloCli.Result result = await HaloCli.RunAsync(env, "models", "pull", "tiny");

            Assert.Equal(1, result.ExitCode);
            Assert.Contains("no space left", result.Stderr);
            Assert.DoesNotContain("   at ", result.Stderr);
            Assert.False(File.Exists(Path.Combine(mount, "tiny", "tiny.gguf")));
            Assert.False(File.Exists(Path.Combine(mount, "tiny", ModelManifest.FileName)));
        }
        finally
        {
            await Shell("umount", mount);
        }
    }

    [RootFact]
    public async Task Pull_DiskFullWhileStreamingUnknownLength_ClearErrorAndPartialRemoved()
    {
        string mount = _temp.File("small");
        Directory.CreateDirectory(mount);
        HaloCli.Result mounted = await Shell("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mount);
        Assert.True(mounted.ExitCode == 0, mounted.ToString());
        _server.IgnoreRanges = true;
        _server.Chunked = true;
        try
        {
            var env = Env;
            env[ModelsEnvironment.DirVariable] = mount;

            HaloCli.Result result = await HaloCli.RunAsync(env, "models", "pull", "tiny");

            Assert.Equal(1, result.ExitCode);
            Assert.Contains("no space left", result.Stderr);
            Assert.Contains("partial download was removed", result.Stderr);
            Assert.Empty(Directory.GetFiles(Path.Combine(mount, "tiny"), "tiny.gguf*"));
        }
        finally
        {
            await Shell("umount", mount);
        }
    }

    private static async Task<HaloCli.Result> Shell(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(info)!;
        string stdout = await process.StandardOutput.ReadToEndAsync();
        string stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return new HaloCli.Result(process.ExitCode, stdout, stderr);
    }
}

/// <summary>A fact that needs root (mounting a small tmpfs to fill the disk); CI runs as root.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Skip = "needs root on Linux to mount a small tmpfs";
        }
    }
}
