using CliWrap;
using CliWrap.Buffered;
using Halo.Installer.Doctor;

namespace Halo.Installer.Provision;

/// <summary>Everything the provision steps share: the root, the machine facts, the options, how commands run.</summary>
public sealed class ProvisionContext
{
    public ProvisionContext(SystemRoot root, ProvisionOptions options)
    {
        Root = root;
        Options = options;
        Machine = new Machine(root);
        Packages = new PackageDb(root);
        Os = OsRelease.Read(root);
    }

    public SystemRoot Root { get; }

    public ProvisionOptions Options { get; }

    public Machine Machine { get; }

    public PackageDb Packages { get; }

    public OsRelease? Os { get; }

    public bool Live => Root.IsLive;

    /// <summary>Where the shipped unit files come from (the embedded copies of the repository's systemd/ folder).</summary>
    public IUnitSource Units { get; init; } = EmbeddedUnits.Instance;

    public TextWriter Out { get; init; } = Console.Out;

    /// <summary>Output goes to a terminal: colours through Spectre.Console.</summary>
    public bool Terminal { get; init; }

    /// <summary>Runs a command on the live system; a non-zero exit is an error naming the command and its stderr.</summary>
    public static async Task RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        BufferedCommandResult result;
        try
        {
            result = await CliWrap.Cli.Wrap(program).WithArguments(arguments).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ProvisionException($"{program} {string.Join(' ', arguments)} did not finish within {timeout.TotalMinutes:0} min");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ProvisionException($"{program}: {e.Message}");
        }

        if (result.ExitCode != 0)
        {
            string error = (result.StandardError.Trim().Length > 0 ? result.StandardError : result.StandardOutput).Trim();
            throw new ProvisionException($"{program} {string.Join(' ', arguments)} exited {result.ExitCode}: {LastLine(error)}");
        }
    }

    /// <summary>A command line as a person would type it (arguments with spaces quoted).</summary>
    public static string Describe(string program, IReadOnlyList<string> arguments) =>
        string.Join(' ', arguments.Select(a => a.Length == 0 || a.Contains(' ') ? $"'{a}'" : a).Prepend(program));

    private static string LastLine(string text)
    {
        int newline = text.LastIndexOf('\n');
        return newline < 0 ? text : text[(newline + 1)..];
    }

    /// <summary>Writes a file under the root atomically (temp + rename) with a mode.</summary>
    public void WriteFile(string path, string content, UnixFileMode mode)
    {
        string host = Root.Host(path);
        Directory.CreateDirectory(Path.GetDirectoryName(host)!);
        string temp = host + ".halo-tmp";
        File.WriteAllText(temp, content);
        SystemRoot.SetModeOfHostPath(temp, mode);
        File.Move(temp, host, overwrite: true);
    }
}

/// <summary>A step could not be applied; the message says what and why.</summary>
public sealed class ProvisionException(string message) : Exception(message);

/// <summary>The command-line options of `halo provision`.</summary>
/// <param name="Yes">Apply without asking (scripts); does not cover the kernel command line.</param>
/// <param name="KernelArgs">Consent to change the kernel command line (TTM limit) without a prompt.</param>
/// <param name="Interactive">A person can answer prompts (stdin and stdout are a terminal).</param>
public sealed record ProvisionOptions(bool DryRun, bool Yes, bool KernelArgs, bool Interactive, string Model = ProvisionOptions.DefaultModel)
{
    public const string DefaultModel = "bitnet-b1.58-2b-4t-gguf";
}
