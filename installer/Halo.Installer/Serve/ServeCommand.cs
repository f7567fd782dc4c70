using System.CommandLine;
using Halo.Server;

namespace Halo.Installer.Serve;

/// <summary><c>halo serve</c>: the daemon in the foreground, the same host as the <c>halo-server</c> binary.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "Configuration file (default /etc/halo/halo.yaml when present)" };
        var model = new Option<string?>("--model") { Description = "Model file or directory, or a name under model.models_dir" };
        var listen = new Option<string?>("--listen") { Description = "host:port, [ipv6]:port or unix:/path (default 127.0.0.1:8180)" };
        var demo = new Option<bool>("--demo") { Description = "Serve a small synthetic model with RANDOM weights (made on first run in ~/.cache/halo)" };
        var command = new Command("serve", "Run the daemon in the foreground (OpenAI-compatible API, systemd notify, metrics)");
        command.Options.Add(config);
        command.Options.Add(model);
        command.Options.Add(listen);
        command.Options.Add(demo);
        command.SetAction(parse => HaloHost.RunAsync(new ServeArguments
        {
            ConfigPath = parse.GetValue(config),
            ModelPath = parse.GetValue(model),
            Listen = parse.GetValue(listen),
            Demo = parse.GetValue(demo),
        }).GetAwaiter().GetResult());
        return command;
    }
}
