using System.CommandLine;

namespace Halo.Installer;

/// <summary>Exit codes of every command (DESIGN.md section 4) and the one place parse errors become code 2.</summary>
public static class Cli
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int UsageError = 2;

    public static int Invoke(RootCommand root, string[] args)
    {
        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                Console.Error.WriteLine($"halo: {error.Message}");
            }

            Console.Error.WriteLine("Run 'halo --help' for usage.");
            return UsageError;
        }

        return parse.Invoke();
    }
}
