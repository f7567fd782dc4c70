namespace Halo.Core.Configuration;

/// <summary>
/// The whole configuration of the appliance (DESIGN.md section 5): <c>/etc/halo/halo.yaml</c>, then
/// <c>HALO_*</c> environment variables, then flags. Built and validated by <see cref="HaloOptionsLoader"/>;
/// every key is declared once in <see cref="ConfigKeys"/> and documented in <c>config/halo.yaml</c>.
/// The defaults here are the defaults of an empty file.
/// </summary>
public sealed record HaloOptions
{
    public const string DefaultConfigPath = "/etc/halo/halo.yaml";

    public ServerOptions Server { get; init; } = new();

    public ModelOptions Model { get; init; } = new();

    public SchedulerOptions Scheduler { get; init; } = new();

    public AuthOptions Auth { get; init; } = new();

    public LoggingOptions Logging { get; init; } = new();

    public MetricsOptions Metrics { get; init; } = new();

    public DoctorOptions Doctor { get; init; } = new();
}

/// <summary>The HTTP side of the daemon.</summary>
public sealed record ServerOptions
{
    /// <summary>Where to listen: <c>host:port</c>, <c>[v6]:port</c> or <c>unix:/path</c>; ignored under socket activation.</summary>
    public IReadOnlyList<ListenAddress> Listen { get; init; } = [ListenAddress.Parse("127.0.0.1:8180")];

    /// <summary>Largest request body accepted; larger bodies get 413.</summary>
    public long MaxBodyBytes { get; init; } = 1024 * 1024;

    /// <summary>On SIGTERM, how long in-flight generations may run before they are cut.</summary>
    public double DrainTimeoutSeconds { get; init; } = 30;

    /// <summary>Seconds suggested to clients in <c>Retry-After</c> when the queue is full.</summary>
    public int RetryAfterSeconds { get; init; } = 1;
}

/// <summary>Which model to serve and how to run it.</summary>
public sealed record ModelOptions
{
    /// <summary>A model file or directory, or a name under <see cref="ModelsDir"/>. Empty: the only model there.</summary>
    public string Path { get; init; } = "";

    /// <summary>The id shown by <c>/v1/models</c>; empty: the file name without extension.</summary>
    public string Name { get; init; } = "";

    public string ModelsDir { get; init; } = "/var/lib/halo/models";

    /// <summary>auto, cpu or gpu.</summary>
    public string Backend { get; init; } = "auto";

    /// <summary>CPU threads for the CPU backend; 0 = all cores.</summary>
    public int Threads { get; init; }

    /// <summary>Positions per sequence (KV cache size); 0 = the model's own context length.</summary>
    public int ContextLength { get; init; }

    /// <summary>Feed-forward activation override (silu or relu2); empty = the model's own.</summary>
    public string Activation { get; init; } = "";

    /// <summary>How the CPU backend stores the LM head: source (as the file, exact), int8, int6 or int4; empty = int6.</summary>
    public string LmHead { get; init; } = "";

    /// <summary>Where repacked weights are kept between starts (a warm start maps them instead of repacking), or
    /// <c>off</c>; empty = systemd's cache or state directory, else <c>~/.cache/halo/repack</c>.</summary>
    public string RepackCache { get; init; } = "";
}

/// <summary>Continuous batching.</summary>
public sealed record SchedulerOptions
{
    /// <summary>Sequences generated at once (each has its own KV cache).</summary>
    public int Slots { get; init; } = 4;

    /// <summary>Requests waiting for a slot; one more gets 429.</summary>
    public int QueueSize { get; init; } = 64;

    /// <summary>Prompt tokens fed per step, so long prompts do not stall other streams (at most 64 while any stream decodes).</summary>
    public int PrefillChunkTokens { get; init; } = 256;

    /// <summary>Completion length when a request names none; 0 = until the context is full.</summary>
    public int DefaultMaxTokens { get; init; }
}

/// <summary>API keys. With none configured every path is public.</summary>
public sealed record AuthOptions
{
    /// <summary>SHA-256 hashes of the keys, hex (<c>printf %s KEY | sha256sum</c>), optionally prefixed <c>sha256:</c>.</summary>
    public IReadOnlyList<string> ApiKeys { get; init; } = [];

    /// <summary>A file with one hash per line (# comments), read at start.</summary>
    public string ApiKeyFile { get; init; } = "";

    /// <summary>Paths served without a key even when keys are configured.</summary>
    public IReadOnlyList<string> PublicPaths { get; init; } = ["/health", "/livez", "/metrics"];
}

/// <summary>Where logs go.</summary>
public sealed record LoggingOptions
{
    /// <summary>trace, debug, information, warning, error, critical.</summary>
    public string Level { get; init; } = "information";

    /// <summary>auto (journald under systemd, console otherwise), console or journald.</summary>
    public string Format { get; init; } = "auto";
}

/// <summary>The Prometheus endpoint.</summary>
public sealed record MetricsOptions
{
    /// <summary>Root of the sysfs tree read for amdgpu gauges (tests point it at a fake tree).</summary>
    public string SysfsRoot { get; init; } = "/sys";
}

/// <summary>Read by <c>halo doctor</c>; the daemon only validates it.</summary>
public sealed record DoctorOptions
{
    /// <summary>Interpreter names no serving unit may run.</summary>
    public IReadOnlyList<string> ForbiddenRuntimes { get; init; } =
        ["python", "python2", "python3", "node", "nodejs", "deno", "bun", "ruby", "perl", "php", "java", "lua"];

    /// <summary>Absolute paths of binaries allowed even though their name matches a forbidden runtime.</summary>
    public IReadOnlyList<string> Allowed { get; init; } = [];

    /// <summary>Interpreter processes above this resident size are reported.</summary>
    public int InterpreterRssMb { get; init; } = 100;
}
