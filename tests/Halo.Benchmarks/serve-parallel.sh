#!/usr/bin/env bash
# Concurrency benchmark of issue 6: N streams against one, on the CPU backend, two ways in the same run:
#   1. `halo bench --parallel N`: the daemon's serving loop (BatchScheduler) in-process, engine-side timestamps;
#   2. `halo bench --server URL --parallel N`: the real daemon (`halo serve`, N slots) on a loopback port, driven
#      by N streaming HTTP clients, timed at the client (so tokenizer, JSON, SSE and HTTP are included).
# Both report aggregate and per-stream decode tok/s, the speed-up of N streams over one, and p50/p99 inter-token
# latency. Prints the machine (CPU model, threads, load average before and after) with the numbers: on a shared
# machine only numbers taken at a low load average mean anything.
# Usage: tests/Halo.Benchmarks/serve-parallel.sh MODEL.gguf [STREAMS=8] [THREADS=2] [TG=64] [REPS=3]
#        ($HALO: a built halo; default: a Release build of installer/Halo.Installer)
set -euo pipefail
model=${1:?usage: serve-parallel.sh MODEL.gguf [STREAMS] [THREADS] [TG] [REPS]}
streams=${2:-8}; threads=${3:-2}; tg=${4:-64}; reps=${5:-3}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
daemon=""
cleanup() {
  if [ -n "$daemon" ]; then kill -TERM "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
halo=${HALO:-}
if [ -z "$halo" ]; then
  dotnet build "$here/../../installer/Halo.Installer" -c Release -o "$work/bin" -nologo -v q >/dev/null
  halo="$work/bin/halo"
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "model $model"
echo "machine ${cpu:-unknown}, $(nproc) cores; $threads engine threads; $streams streams of $tg tokens; $reps repetitions"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== in-process: halo bench --parallel $streams (the serving loop, engine timestamps)"
$halo bench --model "$model" --threads "$threads" --pp 16 --tg "$tg" --reps "$reps" --parallel "$streams" 2>/dev/null | grep -E '^(parallel_|metric)'

echo
echo "== daemon: halo serve ($streams slots) + halo bench --server (HTTP streaming clients, client timestamps)"
HALO_SCHEDULER_SLOTS=$streams HALO_MODEL_THREADS=$threads HALO_MODEL_CONTEXT_LENGTH=$((tg + 64)) \
  $halo serve --model "$model" --listen 127.0.0.1:0 > "$work/daemon.log" 2>&1 &
daemon=$!
url=""
for _ in $(seq 1 600); do
  url=$(sed -n 's/^halo-server: listening on //p' "$work/daemon.log" | head -n 1)
  if [ -n "$url" ]; then break; fi
  if ! kill -0 "$daemon" 2>/dev/null; then echo "halo serve exited:"; tail -n 20 "$work/daemon.log"; exit 1; fi
  sleep 0.2
done
[ -n "$url" ] || { echo "halo serve did not report its address:"; tail -n 20 "$work/daemon.log"; exit 1; }
$halo bench --server "$url" --parallel "$streams" --tg "$tg" --reps "$reps" 2>/dev/null | grep -E '^(parallel_|metric)'
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
