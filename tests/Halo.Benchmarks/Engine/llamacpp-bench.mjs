// One repetition of llama.cpp's speed on a GGUF, measured like `halo bench` measures Halo: load, prefill of
// PP tokens into an empty cache, TG greedy steps right after it, TG steps from an empty cache, peak RSS.
// Prints one JSON object. Used by compare-llamacpp.sh; needs node-llama-cpp under LLAMACPP_DIR.
// Usage: node llamacpp-bench.mjs MODEL THREADS PP TG
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [model, threads, pp, tg] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const llamaDir = process.env.LLAMACPP_DIR ?? "/work/llamacpp";
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(join(llamaDir, "node_modules/node-llama-cpp/dist/index.js")).href);

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads });
let t0 = performance.now();
const m = await llama.loadModel({ modelPath: model, gpuLayers: 0 });
const context = await m.createContext({ contextSize: pp + tg, batchSize: Math.min(512, pp), threads, flashAttention: false });
const loadMs = performance.now() - t0;
const vocab = m.tokens?.vocabSize ?? 32000;
let seed = 1234;
const prompt = Array.from({ length: pp }, () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % Math.min(vocab, 32000); });

const seq = context.getSequence();
t0 = performance.now();
let out = await seq.controlledEvaluate(prompt.map((t, i) => i === pp - 1 ? [t, { generateNext: { token: true, options: { temperature: 0 } } }] : t));
const ppSeconds = (performance.now() - t0) / 1000;

async function decode(first) {
  let token = first;
  const start = performance.now();
  for (let i = 0; i < tg; i++) {
    const r = await seq.controlledEvaluate([[token, { generateNext: { token: true, options: { temperature: 0 } } }]]);
    token = r[0].next.token;
  }
  return (performance.now() - start) / 1000;
}

const tgSeconds = await decode(out[pp - 1].next.token);
await seq.clearHistory();
const tgD0Seconds = await decode(prompt[0]);
const hwm = readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s+(\d+)/);
console.log(JSON.stringify({
  pp_tps: pp / ppSeconds, tg_tps: tg / tgSeconds, tg_d0_tps: tg / tgD0Seconds, load_ms: loadMs,
  peak_rss_mib: hwm ? Number(hwm[1]) / 1024 : 0,
}));
process.exit(0);
