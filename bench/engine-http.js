// `node bench/engine-http.js [--json] [--rounds N] [--threads T]`: the overhead of the Tinker engine (SPEC §8,
// issue 10) — one reference-sized NRT step (sample G·K traces, score the packed batch, SPEC §3/§4 weights, one
// forward+backward+AdamW) through a Tinker-API server over loopback (nrt's own server, in a child process, computing
// with the native engine) against the same step in process. Both sides run interleaved, `reps` steps a round;
// each side's value is the median. With --json, stdout gets one line:
//   {"name":"engine_http_overhead","nrt":<ms via HTTP>,"peer":<ms in process>,"unit":"ms","ratio":nrt/peer}
// Needs dist/ (npx tsc -p tsconfig.json) and the addon.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { NativeEngine } from "../dist/engine/native.js";
import { openTinker } from "../dist/engine/tinker.js";
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

/** nrt's Tinker server in a child process with the same thread count; resolves with its URL. */
function startServer() {
  const src = `
    import { startTinkerServer } from ${JSON.stringify(new URL("../dist/engine/_tinker-server.js", import.meta.url).href)};
    import { llamaConfig } from ${JSON.stringify(new URL("../dist/model/config.js", import.meta.url).href)};
    import { Model } from ${JSON.stringify(new URL("../dist/model/model.js", import.meta.url).href)};
    import { setThreads } from ${JSON.stringify(new URL("../dist/model/native.js", import.meta.url).href)};
    setThreads(${threads});
    const model = Model.init(llamaConfig(${JSON.stringify({ ...REF.model, bosTokenId: SPECIALS.bos, eosTokenId: SPECIALS.eos })}), 7, 0.05);
    const s = await startTinkerServer({ model, baseModel: "nrt-bench" });
    console.log(s.url);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", src], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", (url) => resolve({ url, child }));
    child.once("exit", (code) => reject(new Error(`the server exited with code ${code}`)));
  });
}

async function main() {
  setThreads(threads);
  const { url, child } = await startServer();
  try {
    const local = new NativeEngine(refModel());
    const remote = await openTinker(refModel(), {
      url,
      baseModel: "",
      loraRank: 0,
      timeoutMs: 120_000,
      retries: 2,
      backoffMs: 200,
      chunkTokens: 65536,
      concurrency: 64,
    });
    log(
      `engine_http_overhead: Llama V=${REF.model.vocabSize} C=${REF.model.hiddenSize} L=${REF.model.numLayers}, ` +
        `G=${REF.G} K=${REF.K} traces ≤ ${REF.maxTraceTokens} tokens, ${threads} thread(s), server ${url}`,
    );
    const sides = { peer: { engine: local, ms: [] }, nrt: { engine: remote, ms: [] } };
    let seed = 1;
    for (const s of Object.values(sides)) await step(s.engine, seed++); // warm-up
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? ["nrt", "peer"] : ["peer", "nrt"];
      for (const name of order)
        for (let i = 0; i < reps; i++) sides[name].ms.push(await step(sides[name].engine, seed++));
      log(
        `  round ${r + 1}/${rounds}: in process ${median(sides.peer.ms).toFixed(1)} ms, HTTP ${median(sides.nrt.ms).toFixed(1)} ms`,
      );
    }
    const nrt = median(sides.nrt.ms);
    const peer = median(sides.peer.ms);
    const ratio = nrt / peer;
    log(
      `step via HTTP ${nrt.toFixed(1)} ms, in process ${peer.toFixed(1)} ms: ratio ${ratio.toFixed(3)} (target <= 1.2)`,
    );
    if (json) {
      const line = { name: "engine_http_overhead", nrt: +nrt.toFixed(1), peer: +peer.toFixed(1), unit: "ms" };
      process.stdout.write(`${JSON.stringify({ ...line, ratio: +ratio.toFixed(3) })}\n`);
    }
  } finally {
    child.kill();
  }
}

await main();
