using System.Net;
using Halo.Core.Configuration;
using Halo.Core.Formats;
using Halo.Server.Hosting;
using Halo.Server.Inference;
using Halo.Server.Mcp;
using Halo.Server.Metrics;
using Halo.Server.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace Halo.Server;

/// <summary>How the daemon was asked to run: <c>halo-server</c> and <c>halo serve</c> flags.</summary>
public sealed record ServeArguments
{
    /// <summary>--config FILE; null: /etc/halo/halo.yaml if it exists.</summary>
    public string? ConfigPath { get; init; }

    /// <summary>--model PATH (overrides model.path).</summary>
    public string? ModelPath { get; init; }

    /// <summary>--listen ADDR (overrides server.listen).</summary>
    public string? Listen { get; init; }

    /// <summary>--demo: serve the synthetic demo model (random weights), made on first run in the cache dir.</summary>
    public bool Demo { get; init; }
}

/// <summary>
/// The daemon's host, shared by the <c>halo-server</c> executable and <c>halo serve</c>: configuration, Kestrel
/// (configured addresses or systemd's passed sockets), the OpenAI API, metrics, API keys, systemd notify and
/// watchdog, journald logging, model load and drain.
/// </summary>
public static class HaloHost
{
    /// <summary>Loads the configuration (file, HALO_* environment, flags). Throws <see cref="ConfigErrorsException"/>
    /// with every problem found.</summary>
    public static HaloOptions LoadOptions(ServeArguments arguments)
    {
        var flags = new List<(string, string, string)>();
        if (arguments.ModelPath is not null)
        {
            flags.Add(("model.path", arguments.ModelPath, "--model"));
        }

        if (arguments.Listen is not null)
        {
            flags.Add(("server.listen", arguments.Listen, "--listen"));
        }

        HaloOptions options = HaloOptionsLoader.Load(arguments.ConfigPath, Environment.GetEnvironmentVariables(), flags);
        if (arguments.Demo)
        {
            string path = DemoModel.EnsureCreated(Console.Out);
            options = options with
            {
                Model = options.Model with { Path = path, Name = options.Model.Name.Length > 0 ? options.Model.Name : DemoModel.Name },
            };
        }

        return options;
    }

    /// <summary>Runs the daemon until SIGTERM/SIGINT. Returns the process exit code: 0 after a clean stop (drain
    /// included), 1 when the configuration or the model is unusable (the reason printed, no stack trace).</summary>
    public static async Task<int> RunAsync(ServeArguments arguments, CancellationToken cancellationToken = default)
    {
        bool collectionSuspended = StartupGc.Suspend();
        HaloOptions options;
        try
        {
            options = LoadOptions(arguments);
        }
        catch (ConfigErrorsException e)
        {
            await Console.Error.WriteLineAsync($"halo-server: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"halo-server: cannot prepare the demo model: {e.Message}");
            return 1;
        }

        // The model loads and warms up on its own thread from here on, while the web host is built and binds its
        // sockets: READY=1 waits for both (ModelService), so the start takes about the longer of the two, not their sum.
        using ILoggerFactory loggerFactory = LoggerFactory.Create(logging => ConfigureLogging(logging, options.Logging));
        var preparation = new ModelPreparation(options, new EngineModelLoader(), new ModelRuntime(), new SystemdNotifier(),
            loggerFactory.CreateLogger<ModelService>());
        // The metrics registry is built on a thread of its own while the model loads and the host is built:
        // prometheus-net compiles its name-checking regular expressions and DotNetStats reflects over the runtime,
        // about 36 ms of a 2-core start's CPU. Started after the logging is set up, which it slowed when beside it.
        Task<HaloMetrics> metrics = Task.Factory.StartNew(() => new HaloMetrics(options.Metrics.SysfsRoot),
            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        _ = preparation.Start();
        IHost host;
        try
        {
            host = CreateHostBuilder(options, preparation, loggerFactory, SystemdEnvironment.TakeListenFds(), metrics).Build();
        }
        catch (ConfigErrorsException e)
        {
            preparation.Cancel();
            await Console.Error.WriteLineAsync($"halo-server: {e.Message}");
            return 1;
        }

        using (host)
        {
            try
            {
                await host.StartAsync(cancellationToken);
            }
            catch (Exception e)
            {
                // A model that cannot be loaded, an address in use, a GPU that was asked for and is missing: one line
                // saying what, no stack trace (the log has the details when the level is debug).
                preparation.Cancel();
                string what = IsExpectedStartupFailure(e) ? e.Message : $"{e.GetType().Name}: {e.Message}";
                await Console.Error.WriteLineAsync($"halo-server: cannot start: {what}");
                return 1;
            }

            AnnounceReady(host, options);
            StartupGc.Resume(collectionSuspended);
            await host.WaitForShutdownAsync(cancellationToken);
            return 0;
        }
    }

    /// <summary>The host, ready to build: everything the daemon is, composed in one place. Its model service loads
    /// the model when the host starts.</summary>
    public static IHostBuilder CreateHostBuilder(HaloOptions options) =>
        CreateHostBuilder(options, new EngineModelLoader(), SystemdEnvironment.TakeListenFds());

    /// <summary>The host with its own model service: the model loads (with <paramref name="loader"/>) when the host starts.</summary>
    internal static IHostBuilder CreateHostBuilder(HaloOptions options, IModelLoader loader, IReadOnlyList<int> listenFds) =>
        Compose(options, listenFds, hostLogging: true, metrics: null, services =>
        {
            services.AddSingleton(loader);
            services.AddSingleton<ModelRuntime>();
            services.AddSingleton(provider => new ModelPreparation(options, loader, provider.GetRequiredService<ModelRuntime>(),
                provider.GetRequiredService<ISystemdNotifier>(), provider.GetRequiredService<ILogger<ModelService>>()));
        });

    /// <summary>The host over a <paramref name="preparation"/> started before it, whose runtime and notifier it shares
    /// and whose <paramref name="loggerFactory"/> it logs through; its start waits for the preparation to finish. It
    /// takes its metrics from <paramref name="metrics"/> when that was started before it too.</summary>
    internal static IHostBuilder CreateHostBuilder(HaloOptions options, ModelPreparation preparation, ILoggerFactory loggerFactory,
        IReadOnlyList<int> listenFds, Task<HaloMetrics>? metrics = null) =>
        Compose(options, listenFds, hostLogging: false, metrics, services =>
        {
            // Registered after the host's own, so these win: one notifier, one runtime, one logger factory.
            services.AddSingleton(preparation);
            services.AddSingleton(preparation.Runtime);
            services.AddSingleton(preparation.Notifier);
            services.AddSingleton(loggerFactory);
        });

    private static IHostBuilder Compose(HaloOptions options, IReadOnlyList<int> listenFds, bool hostLogging, Task<HaloMetrics>? metrics,
        Action<IServiceCollection> addModel)
    {
        var keyErrors = new List<string>();
        List<byte[]> keyHashes = ApiKeyHashes.Load(options.Auth, keyErrors);
        if (keyErrors.Count > 0)
        {
            throw new ConfigErrorsException(keyErrors);
        }

        IHostBuilder builder = new HostBuilder().UseContentRoot(AppContext.BaseDirectory);
        builder.UseSystemd();
        if (hostLogging)
        {
            builder.ConfigureLogging(logging => ConfigureLogging(logging, options.Logging));
        }

        // The web server first: hosted services start in order, so it answers /health (503) while the model loads.
        // Kestrel's core only: the daemon speaks plain HTTP/1.1 and HTTP/2 (TLS belongs to a proxy in front), and
        // UseKestrel's HTTP/3 set-up probed for libmsquic at every start (~10 ms of it).
        builder.ConfigureWebHost(web => web
            .UseKestrelCore()
            .ConfigureKestrel(kestrel => ConfigureKestrel(kestrel, options, listenFds))
            .Configure(app =>
            {
                app.UseMiddleware<ApiMiddleware>();
                app.UseRouting();
                app.UseMiddleware<ApiKeyMiddleware>(options, (IReadOnlyList<byte[]>)keyHashes);
                app.UseEndpoints(HaloEndpoints.Map);
            }));

        builder.ConfigureServices(services =>
        {
            services.AddRouting();
            services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(options.Server.DrainTimeoutSeconds + 10));
            if (SystemdEnvironment.HasNotifySocket && !SystemdHelpers.IsSystemdService())
            {
                // Type=notify without systemd as our parent (a wrapper, a test harness): notify all the same.
                services.AddSingleton<ISystemdNotifier, SystemdNotifier>();
                services.AddSingleton<IHostLifetime, SystemdLifetime>();
            }

            services.TryAddSingleton<ISystemdNotifier, SystemdNotifier>();
            services.AddSingleton(options);
            services.AddSingleton(new PassedSockets(listenFds));
            addModel(services);
            services.AddSingleton(provider =>
            {
                HaloMetrics built = metrics?.GetAwaiter().GetResult() ?? new HaloMetrics(options.Metrics.SysfsRoot);
                built.Bind(provider.GetRequiredService<ModelRuntime>());
                return built;
            });
            services.AddSingleton<ServingContext>();
            services.AddHostedService<ModelService>();
            services.AddHostedService<StatusService>();
            services.AddHaloMcp();
            if (SystemdEnvironment.WatchdogPeriod() is { } period)
            {
                services.AddHostedService(provider => new WatchdogService(
                    provider.GetRequiredService<ISystemdNotifier>(), provider.GetRequiredService<ModelRuntime>(), period));
            }
        });

        return builder;
    }

    /// <summary>The addresses the server listens on, as URLs (after start).</summary>
    public static IReadOnlyList<string> ListeningUrls(IHost host) =>
        host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];

    private static void AnnounceReady(IHost host, HaloOptions options)
    {
        ILogger logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Halo.Server");
        ModelRuntime runtime = host.Services.GetRequiredService<ModelRuntime>();
        IReadOnlyList<string> urls = ListeningUrls(host);
        string url = urls.Count > 0 ? urls[0].Replace("://[::]", "://localhost", StringComparison.Ordinal) : "(passed sockets)";
        Log.Ready(logger, runtime.Model?.Id ?? "", string.Join(", ", urls));
        foreach (ListenAddress address in options.Server.Listen)
        {
            if (!address.IsLoopback && options.Auth.ApiKeys.Count == 0 && options.Auth.ApiKeyFile.Length == 0)
            {
                Log.PublicWithoutKeys(logger, address.Text);
            }
        }

        if (url.StartsWith("http", StringComparison.Ordinal))
        {
            Console.Out.WriteLine($"halo-server: listening on {url}");
            Console.Out.WriteLine($"  curl -s {url}/v1/chat/completions -H 'Content-Type: application/json' \\");
            Console.Out.WriteLine($"    -d '{{\"model\": \"{runtime.Model?.Id}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}], \"max_tokens\": 16}}'");
            Console.Out.Flush();
        }
    }

    private static void ConfigureKestrel(KestrelServerOptions kestrel, HaloOptions options, IReadOnlyList<int> listenFds)
    {
        kestrel.AddServerHeader = false;
        kestrel.Limits.MaxRequestBodySize = options.Server.MaxBodyBytes;
        if (listenFds.Count > 0)
        {
            foreach (int fd in listenFds)
            {
                kestrel.ListenHandle((ulong)fd);
            }

            return;
        }

        foreach (ListenAddress address in options.Server.Listen)
        {
            if (address.UnixPath is { } path)
            {
                kestrel.ListenUnixSocket(path);
            }
            else
            {
                kestrel.Listen(address.EndPoint!);
            }
        }
    }

    private static void ConfigureLogging(ILoggingBuilder logging, LoggingOptions options)
    {
        logging.ClearProviders();
        LogLevel level = options.Level switch
        {
            "trace" => LogLevel.Trace,
            "debug" => LogLevel.Debug,
            "warning" => LogLevel.Warning,
            "error" => LogLevel.Error,
            "critical" => LogLevel.Critical,
            _ => LogLevel.Information,
        };
        logging.SetMinimumLevel(level);
        logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        if (level > LogLevel.Debug)
        {
            // The generic host logs a failed start ("Hosting failed to start", an address in use, a model that
            // will not load) at error level with the whole stack trace; RunAsync already prints that failure as one
            // line. Critical still shows what only the host sees: a background service that faulted and stopped it.
            logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        }
        // auto: journald when systemd connected stderr to the journal (and its socket is there), else console.
        bool journald = options.Format == "journald"
            || (options.Format == "auto" && SystemdEnvironment.StderrIsJournal() && File.Exists(JournaldLoggerProvider.DefaultSocket));
        if (journald)
        {
            logging.AddProvider(new JournaldLoggerProvider(JournaldLoggerProvider.DefaultSocket, "halo-server", level));
        }
        else
        {
            logging.AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.TimestampFormat = "HH:mm:ss.fff ";
            });
        }
    }

    private static bool IsExpectedStartupFailure(Exception e) =>
        e is InvalidModelException or IOException or UnauthorizedAccessException or ConfigErrorsException
            or ArgumentException or InvalidOperationException or NotSupportedException;
}
