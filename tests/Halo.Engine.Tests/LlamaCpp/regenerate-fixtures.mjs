// Regenerates llama.cpp reference outputs for Halo's differential test (LlamaCppDifferentialTests.cs).
// Not run by CI: it needs node and the prebuilt llama.cpp CPU build from npm:
//   mkdir -p /work/llamacpp && cd /work/llamacpp && npm install --ignore-scripts node-llama-cpp @node-llama-cpp/linux-x64
// Usage (from the repo root):
//   LLAMACPP_DIR=/work/llamacpp HALO="dotnet path/to/halo.dll" node tests/Halo.Engine.Tests/LlamaCpp/regenerate-fixtures.mjs
// For each case it writes a synthetic GGUF with `halo models synth` (deterministic from preset, type and seed),
// runs llama.cpp on it (CPU, 2 threads, no flash attention, the whole prompt in one batch) and records the
// greedy tokens, the raw logits of the first generated position, and at every step the margin between the
// best and second-best logit (where it is small, ulp-level differences may legitimately pick the other token)
// in fixtures/<case>.json, with the sha256 of the GGUF so the test notices when the synthetic generator changes.
import { execSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const llamaDir = process.env.LLAMACPP_DIR ?? "/work/llamacpp";
const halo = process.env.HALO ?? "dotnet run --project installer/Halo.Installer -c Release --";
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(join(llamaDir, "node_modules/node-llama-cpp/dist/index.js")).href);

// Token-id prompts (the synthetic byte vocabulary maps ids 0..255 to bytes): short, medium and one that
// crosses a 256-position boundary of llama.cpp's KV cache padding.
const prompts = {
  one: [1],
  hello: [1, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100],
  long: Array.from({ length: 300 }, (_, i) => 1 + ((i * 37 + 11) % 250)),
};
const cases = [];
for (const type of ["tq2_0", "tq1_0"]) {
  for (const seed of [1, 2, 3]) {
    cases.push({ preset: "tiny", type, seed });
  }
}
const generate = 16;

const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const work = mkdtempSync(join(tmpdir(), "halo-llamacpp-"));
const outDir = join(here, "fixtures");
mkdirSync(outDir, { recursive: true });
try {
  for (const c of cases) {
    const file = join(work, `${c.preset}-${c.type}-${c.seed}.gguf`);
    execSync(`${halo} models synth --preset ${c.preset} --type ${c.type} --seed ${c.seed} --out ${file}`, { stdio: "inherit" });
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
    const results = [];
    for (const [name, prompt] of Object.entries(prompts)) {
      const context = await model.createContext({ contextSize: 512, batchSize: 512, threads: 2, flashAttention: false });
      const sequence = context.getSequence();
      const tokens = [];
      const margins = [];
      let firstLogits = null;
      let input = prompt;
      for (let step = 0; step < generate; step++) {
        const items = input.map((t, i) => i === input.length - 1
          ? [t, { generateNext: { token: true, logits: true, options: { temperature: 0 } } }]
          : t);
        const out = await sequence.controlledEvaluate(items);
        const last = out[input.length - 1];
        if (step === 0) {
          firstLogits = Array.from({ length: model.tokens.vocabSize ?? last.next.logits.size }, (_, id) => last.next.logits.get(id) ?? null);
        }
        const sorted = [...last.next.logits.values()].sort((a, b) => b - a);
        margins.push(Number((sorted[0] - sorted[1]).toPrecision(4)));
        tokens.push(last.next.token);
        input = [last.next.token];
      }
      results.push({ prompt: name, promptTokens: prompt, tokens, margins, firstLogits: firstLogits.map(v => v === null ? null : Number(v.toPrecision(7))) });
      await context.dispose();
    }
    await model.dispose();
    const sha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
    const json = { llamaCpp: "node-llama-cpp prebuilt CPU build, 2 threads, flash attention off", ...c, sha256, generate, results };
    writeFileSync(join(outDir, `${c.preset}-${c.type}-seed${c.seed}.json`), JSON.stringify(json) + "\n");
    console.log(`${c.preset} ${c.type} seed ${c.seed}: ${results.map(r => r.tokens.join(",")).join(" | ")}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
