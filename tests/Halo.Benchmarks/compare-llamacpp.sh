#!/usr/bin/env bash
# Halo against mainline llama.cpp on the same GGUF, same thread count, in the same run, interleaving the two
# so that both see the same memory-bandwidth period (it drifts by up to 2x on shared machines): only the
# ratios mean anything. Needs node-llama-cpp under $LLAMACPP_DIR (see tests/Halo.Engine.Tests/LlamaCpp/) and
# a built halo ($HALO, default: dotnet run of installer/Halo.Installer in Release).
# Usage: tests/Halo.Benchmarks/compare-llamacpp.sh MODEL.gguf [THREADS=2] [PP=512] [TG=128] [REPS=3] [extra halo bench flags...]
set -euo pipefail
model=${1:?usage: compare-llamacpp.sh MODEL.gguf [THREADS] [PP] [TG] [REPS]}
threads=${2:-2}; pp=${3:-512}; tg=${4:-128}; reps=${5:-3}
shift $(( $# < 5 ? $# : 5 ))
here=$(cd "$(dirname "$0")" && pwd)
halo=${HALO:-}
if [ -z "$halo" ]; then
  out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
  dotnet build "$here/../../installer/Halo.Installer" -c Release -o "$out" -nologo -v q >/dev/null
  halo="dotnet $out/halo.dll"
fi
results=$(mktemp); trap 'rm -f "$results"' EXIT
for rep in $(seq 1 "$reps"); do
  echo "repetition $rep/$reps" >&2
  echo "halo $($halo bench --model "$model" --threads "$threads" --pp "$pp" --tg "$tg" --reps 1 --json "$@" | tr -d '\n')" >> "$results"
  echo "llama $(node "$here/Engine/llamacpp-bench.mjs" "$model" "$threads" "$pp" "$tg")" >> "$results"
done
node - "$results" "$model" "$threads" "$pp" "$tg" <<'JS'
const fs = require("fs");
const [file, model, threads, pp, tg] = process.argv.slice(2);
const halo = [], llama = [];
for (const line of fs.readFileSync(file, "utf8").trim().split("\n")) {
  const [who, ...rest] = line.split(" ");
  const j = JSON.parse(rest.join(" "));
  if (who === "halo") halo.push(Object.fromEntries(Object.entries(j.summary).map(([k, v]) => [k, v.median])));
  else llama.push(j);
}
const median = a => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const cpu = (fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/) || [, "?"])[1];
console.log(`model ${model}\nmachine ${cpu}, ${threads} threads, pp ${pp}, tg ${tg}, ${halo.length} interleaved repetitions (medians)`);
console.log(`${"metric".padEnd(14)}${"halo".padStart(12)}${"llama.cpp".padStart(12)}${"ratio".padStart(10)}`);
for (const k of ["pp_tps", "tg_tps", "tg_d0_tps", "load_ms", "peak_rss_mib"]) {
  const h = median(halo.map(r => r[k])), l = median(llama.map(r => r[k]));
  console.log(`${k.padEnd(14)}${h.toFixed(2).padStart(12)}${l.toFixed(2).padStart(12)}${(h / l).toFixed(2).padStart(9)}x`);
}
JS
