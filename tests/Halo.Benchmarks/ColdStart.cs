using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Halo.Benchmarks;

/// <summary>
/// Cold start of the daemon (issue 6): process start to READY=1, and idle memory.
/// <para>
/// Starts the daemon RUNS times under a real sd_notify socket (NOTIFY_SOCKET, a Unix datagram socket bound here, as
/// systemd does for Type=notify) and reports, per run and as the median: ready_ms, from spawning the process to
/// READY=1 (model loaded, warmed up, listening); cpu_ms, the user + system CPU the daemon had used by then; health,
/// the status of GET /health sent right after READY=1 (must be 200); anon_mib, RssAnon after --idle seconds (resident
/// memory that is neither the mapped weights nor the mapped binaries; shmem_mib is the JIT's code, which .NET's W^X
/// double mapping keeps in shared memory). With -v, also the notify messages with their arrival times, the CPU each
/// thread had used by READY=1 (by thread name: where the start's CPU goes), and the daemon's log
/// (HALO_LOGGING_LEVEL=debug adds the load phases and the warm-up). The first run after a build may repack the
/// weights (the repack cache is keyed by the engine build): run twice, or read the median. On a shared machine only
/// numbers taken at a low load average mean anything; it is printed before and after.
/// </para>
/// </summary>
internal static partial class ColdStart
{
    private const string Usage = """
        usage: dotnet run -c Release --project tests/Halo.Benchmarks -- cold-start DAEMON MODEL.gguf [RUNS=7] [-v] [--idle S] [NAME=VALUE ...]
          DAEMON      the halo-server executable: src/Halo.Server/bin/Release/net10.0/halo-server, or the installer's
                      self-contained ReadyToRun publish (dotnet publish src/Halo.Server -c Release -r linux-x64
                      --self-contained -p:PublishReadyToRun=true -o DIR; then DIR/halo-server)
          --idle S    seconds to idle before reading the memory (default 3)
          NAME=VALUE  extra environment for the daemon, e.g. HALO_MODEL_REPACK_CACHE=/tmp/repack
        """;

    // /proc reports CPU time in USER_HZ, which the kernel fixes at 100 for user space.
    private const int TicksPerSecond = 100;
    private const int SigTerm = 15;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);

    public static int Run(string[] args)
    {
        bool verbose = args.Contains("-v");
        var positional = new List<string>();
        var environment = new Dictionary<string, string>();
        double idleSeconds = 3;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--idle" && i + 1 < args.Length)
            {
                idleSeconds = double.Parse(args[++i], CultureInfo.InvariantCulture);
            }
            else if (args[i].Contains('=', StringComparison.Ordinal))
            {
                string[] pair = args[i].Split('=', 2);
                environment[pair[0]] = pair[1];
            }
            else if (args[i] != "-v")
            {
                positional.Add(args[i]);
            }
        }

        if (positional.Count is < 2 or > 3)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        string daemon = positional[0], model = positional[1];
        int runs = positional.Count > 2 ? int.Parse(positional[2], CultureInfo.InvariantCulture) : 7;
        Console.WriteLine($"daemon {daemon}\nmodel {model}\nmachine {CpuModel()}, {Environment.ProcessorCount} threads; load average before: {LoadAverage()}");
        var results = new List<Result>();
        for (int run = 0; run < runs; run++)
        {
            Result result = Start(daemon, model, environment, TimeSpan.FromSeconds(idleSeconds));
            results.Add(result);
            Console.WriteLine($"run {run}: ready_ms {result.ReadyMs:F0} cpu_ms {result.CpuMs} health {result.Health} anon_mib {result.AnonMib} "
                + $"shmem_mib {result.ShmemMib} file_mib {result.FileMib} exit {result.ExitCode}");
            if (verbose)
            {
                foreach ((double at, string message) in result.Messages)
                {
                    Console.WriteLine($"  {at,5:F0} ms  {message.Trim().Replace("\n", " ", StringComparison.Ordinal)}");
                }

                Console.WriteLine("  CPU ms by thread at READY=1: " + string.Join(", ", result.ThreadCpu.Where(t => t.Ms > 0).Select(t => $"{t.Name} {t.Ms}")));
                foreach (string line in result.Log)
                {
                    Console.WriteLine("  " + line);
                }
            }
        }

        Console.WriteLine($"median: ready_ms {Median(results.Select(r => r.ReadyMs)):F0} (min {results.Min(r => r.ReadyMs):F0}, max {results.Max(r => r.ReadyMs):F0}), "
            + $"cpu_ms {Median(results.Select(r => (double)r.CpuMs)):F0}, anon_mib {Median(results.Select(r => (double)r.AnonMib)):F1}");
        Console.WriteLine($"load average after: {LoadAverage()}");
        return 0;
    }

    private static Result Start(string daemon, string model, Dictionary<string, string> environment, TimeSpan idle)
    {
        string home = Directory.CreateTempSubdirectory("halo-cold-start-").FullName;
        try
        {
            string socketPath = Path.Combine(home, "notify.sock");
            using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            notify.Bind(new UnixDomainSocketEndPoint(socketPath));
            var start = new ProcessStartInfo(daemon) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string argument in (string[])["--model", model, "--listen", "127.0.0.1:0"])
            {
                start.ArgumentList.Add(argument);
            }

            start.Environment["NOTIFY_SOCKET"] = socketPath;
            foreach ((string name, string value) in environment)
            {
                start.Environment[name] = value;
            }

            var log = new List<string>();
            var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            var clock = Stopwatch.StartNew();
            using Process process = Process.Start(start)!;
            DataReceivedEventHandler collect = (_, line) =>
            {
                if (line.Data is null)
                {
                    return;
                }

                lock (log)
                {
                    log.Add(line.Data);
                }

                if (ListeningUrl().Match(line.Data) is { Success: true } found)
                {
                    listening.TrySetResult(found.Groups[1].Value);
                }
            };
            process.OutputDataReceived += collect;
            process.ErrorDataReceived += collect;
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            (double readyMs, List<(double, string)> messages) = WaitForReady(notify, clock, process, log);
            long cpuMs = CpuMs(File.ReadAllText($"/proc/{process.Id}/stat"));
            List<(string Name, long Ms)> threadCpu = ThreadCpu(process.Id);
            if (!listening.Task.Wait(TimeSpan.FromSeconds(30)))
            {
                throw new InvalidOperationException("READY=1 came but the daemon never said where it listens:\n" + string.Join('\n', log));
            }

            using var http = new HttpClient();
            int health = (int)http.GetAsync(listening.Task.Result + "/health").GetAwaiter().GetResult().StatusCode;
            Thread.Sleep(idle);
            string status = File.ReadAllText($"/proc/{process.Id}/status");
            _ = Kill(process.Id, SigTerm);
            process.WaitForExit(60_000);
            return new Result(readyMs, cpuMs, health, Rss(status, "RssAnon"), Rss(status, "RssShmem"), Rss(status, "RssFile"), process.ExitCode,
                messages, threadCpu, log);
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    private static (double ReadyMs, List<(double, string)> Messages) WaitForReady(Socket notify, Stopwatch clock, Process process, List<string> log)
    {
        var messages = new List<(double, string)>();
        var buffer = new byte[4096];
        notify.ReceiveTimeout = (int)ReadyTimeout.TotalMilliseconds;
        while (true)
        {
            int length;
            try
            {
                length = notify.Receive(buffer);
            }
            catch (SocketException)
            {
                process.Kill();
                throw new TimeoutException($"no READY=1 within {ReadyTimeout.TotalSeconds} s; got {messages.Count} messages:\n" + string.Join('\n', log));
            }

            double at = clock.Elapsed.TotalMilliseconds;
            string message = Encoding.UTF8.GetString(buffer, 0, length);
            messages.Add((at, message));
            if (message.Split('\n').Contains("READY=1"))
            {
                return (at, messages);
            }
        }
    }

    /// <summary>User + system CPU in the text of a /proc stat file (fields 14 and 15, counted after the command name's ')').</summary>
    private static long CpuMs(string stat)
    {
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * 1000 / TicksPerSecond;
    }

    /// <summary>CPU ms each thread of the process had used, summed by thread name, largest first.</summary>
    private static List<(string Name, long Ms)> ThreadCpu(int pid)
    {
        var byName = new Dictionary<string, long>();
        foreach (string task in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            try
            {
                string stat = File.ReadAllText(Path.Combine(task, "stat"));
                string name = stat[(stat.IndexOf('(') + 1)..stat.LastIndexOf(')')];
                byName[name] = byName.GetValueOrDefault(name) + CpuMs(stat);
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }

        return byName.OrderByDescending(p => p.Value).Select(p => (p.Key, p.Value)).ToList();
    }

    private static long Rss(string status, string field) =>
        long.Parse(Regex.Match(status, field + @":\s+(\d+)").Groups[1].Value, CultureInfo.InvariantCulture) / 1024;

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string CpuModel() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";

    private static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    [GeneratedRegex(@"listening on (http://\S+)")]
    private static partial Regex ListeningUrl();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private sealed record Result(double ReadyMs, long CpuMs, int Health, long AnonMib, long ShmemMib, long FileMib, int ExitCode,
        List<(double At, string Message)> Messages, List<(string Name, long Ms)> ThreadCpu, List<string> Log);
}
