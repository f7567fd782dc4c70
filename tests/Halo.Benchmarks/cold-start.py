#!/usr/bin/env python3
"""Cold start of the daemon (issue 6): process start to READY=1, and idle memory.

Starts the daemon RUNS times under a real sd_notify socket (NOTIFY_SOCKET, a Unix datagram socket this script
binds, as systemd does for Type=notify) and reports, per run and as the median:
  ready_ms    from spawning the process to receiving READY=1 (model loaded, warmed up, listening);
  cpu_ms      user + system CPU time the daemon had used by then (from /proc/PID/stat);
  health      the status of GET /health sent right after READY=1 (must be 200);
  anon_mib    RssAnon after IDLE seconds of idling (environment IDLE, default 3; /proc/PID/status): resident memory that is neither the
              mapped weights nor the mapped binaries; shmem_mib (RssShmem) is the JIT's code, which .NET's W^X
              double-mapping keeps in shared memory.
With -v, also the STATUS= messages with their arrival times, the CPU time each thread had used by READY=1 (by
thread name: where the start's CPU goes), and the daemon's log (HALO_LOGGING_LEVEL=debug
adds the load phases and the warm-up's duration). The first run after a build may repack the weights (the repack
cache is keyed by the engine build): run twice, or look at the median. Prints the machine and its load average:
on a shared machine only numbers taken at a low load mean anything.

Usage: tests/Halo.Benchmarks/cold-start.py DAEMON MODEL.gguf [RUNS=7] [-v] [NAME=VALUE ...]
  DAEMON   the halo-server executable: src/Halo.Server/bin/Release/net10.0/halo-server, or the installer's
           self-contained ReadyToRun publish (dotnet publish src/Halo.Server -c Release -r linux-x64
           --self-contained -p:PublishReadyToRun=true -o DIR; then DIR/halo-server)
  NAME=VALUE  extra environment for the daemon, e.g. HALO_MODEL_REPACK_CACHE=/tmp/repack
"""
import os, re, socket, statistics, subprocess, sys, tempfile, time, urllib.request

args = [a for a in sys.argv[1:] if a != '-v']
verbose = '-v' in sys.argv[1:]
if len(args) < 2:
    sys.exit(__doc__)
daemon, model = args[0], args[1]
runs = int(args[2]) if len(args) > 2 and '=' not in args[2] else 7
extra = dict(a.split('=', 1) for a in args[2:] if '=' in a)
idle = float(os.environ.get('IDLE', '3'))

cpu_model = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), 'unknown')
print(f'daemon {daemon}\nmodel {model}\nmachine {cpu_model}, {os.cpu_count()} threads; load average before: {os.getloadavg()}')
ticks = os.sysconf('SC_CLK_TCK')


def thread_cpu(pid):
    """CPU milliseconds (user + system) each thread of pid had used, summed by thread name, largest first."""
    by_name = {}
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            text = open(f'/proc/{pid}/task/{tid}/stat').read()
        except OSError:
            continue  # the thread ended meanwhile
        name = text[text.index('(') + 1:text.rindex(')')]
        fields = text.rsplit(')', 1)[1].split()
        by_name[name] = by_name.get(name, 0) + (int(fields[11]) + int(fields[12])) * 1000 // ticks
    return sorted(by_name.items(), key=lambda item: -item[1])


results = []
for run in range(runs):
    with tempfile.TemporaryDirectory() as home:
        path = os.path.join(home, 'notify.sock')
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(path)
        notify.settimeout(120)
        started = time.monotonic()
        process = subprocess.Popen([daemon, '--model', model, '--listen', '127.0.0.1:0'],
                                   env=dict(os.environ, NOTIFY_SOCKET=path, **extra),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        messages, ready_ms, cpu_ms = [], None, None
        try:
            while ready_ms is None:
                message = notify.recv(4096).decode()
                at = (time.monotonic() - started) * 1000
                messages.append((round(at), message))
                if 'READY=1' in message.split('\n'):
                    ready_ms = at
                    fields = open(f'/proc/{process.pid}/stat').read().rsplit(')', 1)[1].split()
                    cpu_ms = (int(fields[11]) + int(fields[12])) * 1000 // ticks
                    threads = thread_cpu(process.pid)
        except socket.timeout:
            process.kill()
            sys.exit(f'no READY=1 within 120 s; got {messages}:\n{process.communicate()[0]}')
        log = []
        url = None
        while url is None:
            line = process.stdout.readline()
            if not line:
                sys.exit('the daemon exited:\n' + ''.join(log))
            log.append(line)
            found = re.search(r'listening on (http://\S+)', line)
            url = found.group(1) if found else None
        health = urllib.request.urlopen(url + '/health').status
        time.sleep(idle)
        status = open(f'/proc/{process.pid}/status').read()
        memory = {k: int(re.search(k + r':\s+(\d+)', status).group(1)) // 1024 for k in ('RssAnon', 'RssShmem', 'RssFile')}
        process.terminate()
        rest = process.communicate(timeout=60)[0]
        notify.close()
    results.append((ready_ms, cpu_ms, memory['RssAnon']))
    print(f'run {run}: ready_ms {ready_ms:.0f} cpu_ms {cpu_ms} health {health} anon_mib {memory["RssAnon"]} '
          f'shmem_mib {memory["RssShmem"]} file_mib {memory["RssFile"]} exit {process.returncode}')
    if verbose:
        for at, message in messages:
            print(f'  {at:5d} ms  {message.strip()}')
        print('  CPU ms by thread at READY=1: ' + ', '.join(f'{name} {ms}' for name, ms in threads if ms > 0))
        print('  ' + '  '.join(log) + '  '.join(rest.splitlines(keepends=True)))

ready = [r[0] for r in results]
print(f'median: ready_ms {statistics.median(ready):.0f} (min {min(ready):.0f}, max {max(ready):.0f}), '
      f'cpu_ms {statistics.median(r[1] for r in results):.0f}, anon_mib {statistics.median(r[2] for r in results)}')
print(f'load average after: {os.getloadavg()}')
