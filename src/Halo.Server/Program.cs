namespace Halo.Server;

/// <summary>Entry point of the published daemon; <c>halo serve</c> runs the same host (<see cref="HaloHost"/>).</summary>
public static class Program
{
    private const string Usage = """
        usage: halo-server [--config FILE] [--model PATH] [--listen ADDR] [--demo]

          --config FILE   configuration file (default /etc/halo/halo.yaml when present)
          --model PATH    model file or directory, or a name under model.models_dir
          --listen ADDR   host:port, [ipv6]:port or unix:/path (default 127.0.0.1:8180)
          --demo          serve a small synthetic model with RANDOM weights, made on first run
                          in $XDG_CACHE_HOME/halo (or ~/.cache/halo)
        """;

    public static async Task<int> Main(string[] args)
    {
        var arguments = new ServeArguments();
        for (int i = 0; i < args.Length; i++)
        {
            string flag = args[i];
            if (flag is "--help" or "-h")
            {
                Console.Out.WriteLine(Usage);
                return 0;
            }

            if (flag == "--demo")
            {
                arguments = arguments with { Demo = true };
                continue;
            }

            bool takesValue = flag is "--config" or "--model" or "--listen";
            if (!takesValue || i + 1 >= args.Length)
            {
                await Console.Error.WriteLineAsync(takesValue ? $"halo-server: {flag} needs a value" : $"halo-server: unknown argument '{flag}'");
                await Console.Error.WriteLineAsync(Usage);
                return 2;
            }

            string value = args[++i];
            arguments = flag switch
            {
                "--config" => arguments with { ConfigPath = value },
                "--model" => arguments with { ModelPath = value },
                _ => arguments with { Listen = value },
            };
        }

        return await HaloHost.RunAsync(arguments);
    }
}
