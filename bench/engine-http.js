// `node bench/engine-http.js [--json] [--rounds N] [--threads T]`: the overhead of the HTTP engines (SPEC §8,
// issue 10) — one reference-sized NRT step (sample G·K traces, score the packed batch, SPEC §3/§4 weights, one
// forward+backward+AdamW) against the same step in process:
//   - tinker: the whole step on a Tinker-API server over loopback (nrt's stand-in, test/stand-ins/tinker-server.ts, in
//     a child process, computing with the native engine);
//   - openai-split: sampling on a vLLM-protocol server over loopback (nrt's stand-in, in a child process), scoring
//     and training in process; after each update the weights are written to the server's model directory (a temp
//     directory) and the server reloads them, as with a real vLLM.
// The three sides run interleaved, `reps` steps a round; each side's value is the median. With --json, stdout gets:
//   {"name":"engine_http_overhead","nrt":<ms via Tinker>,"peer":<ms in process>,"unit":"ms","ratio":nrt/peer}
//   {"name":"engine_http_overhead_split","nrt":<ms via openai-split>,"peer":<ms in process>,"unit":"ms","ratio":…}
// Needs dist/ (npx tsc -p tsconfig.json), the addon, and the dev dependencies (the servers run under vite-node).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { NativeEngine } from "../dist/engine/native.js";
import { openSplit } from "../dist/engine/split.js";
import { openTinker } from "../dist/engine/tinker.js";
import { VllmSampler } from "../dist/engine/vllm.js";
import { saveModelDir } from "../dist/io/model-dir.js";
import { llamaConfig } from "../dist/model/config.js";
import { Model } from "../dist/model/model.js";
import { setThreads } from "../dist/model/native.js";
import { resolveObjective } from "../dist/nrt/methods.js";
import { sampleParams, toTraces } from "../dist/rollout/rollout.js";
import { packNrtBatch, scorePacked } from "../dist/train/nrt-batch.js";

/** bench/run.js's reference model, and an NRT step of G prompts × K traces of up to 64 tokens. */
export const REF = {
  model: { vocabSize: 512, hiddenSize: 128, numLayers: 4, numHeads: 4, numKvHeads: 4, intermediateSize: 384 },
  G: 8,
  K: 8,
  promptLen: 8,
  answerLen: 4,
  maxTraceTokens: 64,
};
const SPECIALS = { bos: 1, eos: 2, answerStart: 3 };

const argv = process.argv.slice(2);
const json = argv.includes("--json");
const opt = (flag, def) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : def);
const rounds = Number(opt("--rounds", "5"));
const reps = Number(opt("--reps", "2"));
// one compute thread by default: what is measured is the ratio, and with two processes (client and server) their
// OpenMP threads would contend for the cores (on a shared 2-core machine, 2 threads make both sides ~8x slower)
const threads = Number(opt("--threads", "1"));
const log = (s) => process.stderr.write(`${s}\n`);
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const config = () => llamaConfig({ ...REF.model, bosTokenId: SPECIALS.bos, eosTokenId: SPECIALS.eos });

/** The same random model on both sides (seeded). */
const refModel = () => Model.init(config(), 7, 0.05);

// prompts ⟨bos⟩ + 7 tokens, answers 3 tokens + ⟨eos⟩, from a fixed pseudo-random sequence (no special ids)
const rand = (i) => 4 + (((i * 2654435761) % 4093) % (REF.model.vocabSize - 4));
const prompts = Array.from({ length: REF.G }, (_, g) => [
  SPECIALS.bos,
  ...Array.from({ length: REF.promptLen - 1 }, (_, i) => rand(g * 97 + i)),
]);
const answers = Array.from({ length: REF.G }, (_, g) => [
  ...Array.from({ length: REF.answerLen - 1 }, (_, i) => rand(g * 131 + 50 + i)),
  SPECIALS.eos,
]);
const objective = resolveObjective({});
const ADAMW = { lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clip: 1 };

/** One NRT step on `engine` (what src/train/trainer.ts's nrtStep asks of it); returns ms. */
async function step(engine, seed) {
  const t0 = performance.now();
  await engine.syncSampler();
  const params = sampleParams({
    k: REF.K,
    temperature: 1,
    topP: 1,
    topK: 0,
    maxTraceTokens: REF.maxTraceTokens,
    seed,
    answerStartId: SPECIALS.answerStart,
    specialIds: [0, 1, 2, 3],
  });
  const traces = toTraces(await engine.sample(prompts, params), SPECIALS.answerStart);
  const groups = prompts.map((p, g) => ({ prompt: p, answer: answers[g], traces: traces[g] }));
  const pack = packNrtBatch(groups, SPECIALS.answerStart);
  const scored = scorePacked(pack, groups, await engine.score(pack.seqs), objective);
  const r = await engine.step(scored.seqs, scored.weights, ADAMW);
  if (!r.applied) throw new Error(`step not applied (loss ${r.loss})`);
  return performance.now() - t0;
}

/**
 * A server in a child process with the same thread count: nrt's Tinker server, or the vLLM stand-in on `dir`. Both
 * are test doubles (test/stand-ins/, not shipped in dist/), run from their TypeScript by vite-node.
 */
function startServer(kind, dir) {
  const here = (p) => fileURLToPath(new URL(p, import.meta.url));
  const args =
    kind === "tinker"
      ? { kind, threads, model: config(), seed: 7, std: 0.05, baseModel: "nrt-bench" }
      : { kind, threads, dir, name: "nrt-bench", devMode: true };
  const child = spawn(
    process.execPath,
    [here("../node_modules/vite-node/vite-node.mjs"), here("../test/stand-ins/serve.ts"), "--", JSON.stringify(args)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", (url) => resolve({ url, child }));
    child.once("exit", (code) => reject(new Error(`the ${kind} server exited with code ${code}`)));
  });
}

async function main() {
  setThreads(threads);
  const dir = mkdtempSync(join(tmpdir(), "nrt-bench-http-"));
  const served = join(dir, "served");
  saveModelDir(served, refModel());
  const servers = [];
  try {
    const tinkerServer = await startServer("tinker");
    servers.push(tinkerServer.child);
    const vllmServer = await startServer("vllm", served);
    servers.push(vllmServer.child);
    const local = new NativeEngine(refModel());
    const tinker = await openTinker(refModel(), {
      url: tinkerServer.url,
      baseModel: "",
      loraRank: 0,
      timeoutMs: 120_000,
      retries: 2,
      backoffMs: 200,
      chunkTokens: 65536,
      concurrency: 64,
    });
    const learnerModel = refModel();
    const sampler = new VllmSampler({
      url: vllmServer.url,
      timeoutMs: 120_000,
      retries: 2,
      backoffMs: 200,
      concurrency: 64,
      chunkTokens: 65536,
      servedModel: "",
      reload: "auto",
    });
    const split = await openSplit(new NativeEngine(learnerModel), learnerModel, sampler, {
      dir: served,
      files: {},
      scoreOnSampler: false,
    });
    log(
      `engine_http_overhead: Llama V=${REF.model.vocabSize} C=${REF.model.hiddenSize} L=${REF.model.numLayers}, ` +
        `G=${REF.G} K=${REF.K} traces ≤ ${REF.maxTraceTokens} tokens, ${threads} thread(s), ` +
        `Tinker server ${tinkerServer.url}, vLLM-protocol server ${vllmServer.url}`,
    );
    const sides = {
      peer: { engine: local, ms: [], label: "in process" },
      tinker: { engine: tinker, ms: [], label: "tinker" },
      split: { engine: split, ms: [], label: "openai-split" },
    };
    let seed = 1;
    for (const s of Object.values(sides)) await step(s.engine, seed++); // warm-up
    const names = Object.keys(sides);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [...names].reverse() : names;
      for (const name of order)
        for (let i = 0; i < reps; i++) sides[name].ms.push(await step(sides[name].engine, seed++));
      log(
        `  round ${r + 1}/${rounds}: ${names.map((n) => `${sides[n].label} ${median(sides[n].ms).toFixed(1)} ms`).join(", ")}`,
      );
    }
    const peer = median(sides.peer.ms);
    for (const [side, name] of [
      ["tinker", "engine_http_overhead"],
      ["split", "engine_http_overhead_split"],
    ]) {
      const nrt = median(sides[side].ms);
      const ratio = nrt / peer;
      log(
        `step via ${sides[side].label} ${nrt.toFixed(1)} ms, in process ${peer.toFixed(1)} ms: ratio ${ratio.toFixed(3)} (target <= 1.2)`,
      );
      if (json) {
        const line = { name, nrt: +nrt.toFixed(1), peer: +peer.toFixed(1), unit: "ms" };
        process.stdout.write(`${JSON.stringify({ ...line, ratio: +ratio.toFixed(3) })}\n`);
      }
    }
    if (split.reloads < rounds * reps) throw new Error(`the split engine reloaded ${split.reloads} times`);
  } finally {
    for (const c of servers) c.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
