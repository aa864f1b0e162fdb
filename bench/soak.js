// `node bench/soak.js [--json] [--steps N] [--method M]`: the soak run of issue 9 (long runs keep memory flat).
//
// Trains a tiny model (2 layers, width 32, the char tokenizer) for N ≥ 2,000 small NRT steps in this one process
// through the library API (dist/), checkpointing every 500 steps, and reads the resident memory (RSS) after a
// full GC at the start (after step 1), the middle (step N/2) and the end (step N). The first half is the warm-up:
// allocators and caches settle there, so the check is growth over the second half, end / middle < 1.05.
// Human-readable lines go to stderr; with --json, stdout gets one SPEC §8 line:
//   {"name": "soak_rss_growth", "nrt": <RSS at end, MB>, "peer": <RSS at middle, MB>, "unit": "MB", "ratio"}
// The exit code is 1 if either grows by 5 % or more (RSS, or the JS heap, where an accumulating array shows). Needs dist/ (npx tsc -p tsconfig.json) and the addon.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  charTokenizerJson,
  llamaConfig,
  Model,
  resolveFields,
  saveModelDir,
  train,
  trainFields,
} from "../dist/index.js";
import { CHAR_IDS, CHAR_VOCAB_SIZE } from "../dist/tokenizer/char-tokenizer-json.js";

// nrt's CLI runs node with V8's young generation fixed at 16 MB (bin/nrt.js: --max-semi-space-size=8); with V8's
// default (up to 32 MB) the young generation doubles once, at a moment that varies from run to run, which shows as
// a one-time step of ~16 MB in RSS (issue 19). The soak measures what the CLI runs: re-run under the same flag.
const YOUNG_GEN = "--max-semi-space-size=8";
if (!process.execArgv.includes(YOUNG_GEN)) {
  const r = spawnSync(process.execPath, [YOUNG_GEN, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
  });
  process.exit(r.status ?? 1);
}

const argv = process.argv.slice(2);
const json = argv.includes("--json");
const opt = (flag, def) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : def);
const steps = Number(opt("--steps", "2000"));
const method = opt("--method", "nrt-ws");
const LIMIT = 1.05;
const log = (s) => process.stderr.write(`${s}\n`);

// the trainer's alarms (traces truncated, …) say nothing about memory here: count them instead of printing them
let alarms = 0;
const write = process.stderr.write.bind(process.stderr);
process.stderr.write = (chunk, ...rest) => {
  if (String(chunk).startsWith("alarm [")) return Boolean(++alarms);
  return write(chunk, ...rest);
};

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc");
const mb = (bytes) => bytes / 2 ** 20;
/** RSS and JS heap in MB, after a full collection (so only what is still referenced counts). */
function memory() {
  gc();
  const m = process.memoryUsage();
  return { rss: mb(m.rss), heap: mb(m.heapUsed), external: mb(m.external + m.arrayBuffers) };
}

const dir = mkdtempSync(join(tmpdir(), "nrt-soak-"));
try {
  const model = join(dir, "model");
  const cfg = llamaConfig({
    vocabSize: CHAR_VOCAB_SIZE,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 1,
    intermediateSize: 64,
    bosTokenId: CHAR_IDS.bos,
    eosTokenId: CHAR_IDS.eos,
    answerStartTokenId: CHAR_IDS.answerStart,
  });
  saveModelDir(model, Model.init(cfg, 3, 0.1), { "tokenizer.json": JSON.stringify(charTokenizerJson()) });
  const qa = [];
  for (let a = 0; a < 10; a++)
    for (const [op, x] of [
      ["+", 1],
      ["*", 3],
    ])
      qa.push({ question: `a${a},b${op}${x};b`, answer: `b=${op === "+" ? (a + x) % 10 : (a * x) % 10}` });
  const data = join(dir, "train.jsonl");
  writeFileSync(data, qa.map((r) => JSON.stringify(r)).join("\n"));

  const trainCfg = resolveFields(
    trainFields,
    undefined,
    {
      model,
      data,
      out: join(dir, "run"),
      method,
      steps,
      groupSize: 4,
      promptsPerStep: 4,
      maxTraceTokens: 16,
      lr: 1e-5, // small: the model barely moves, so every step has the same work (no trace collapse)
      threads: 1,
      checkpointEvery: 500,
      keepCheckpoints: 1,
      progress: false,
    },
    "soak",
  );
  const at = {};
  const mid = Math.floor(steps / 2);
  const t0 = performance.now();
  train(trainCfg, {
    onStep: (_m, s) => {
      if (s === 1 || s === mid || s === steps) {
        at[s] = memory();
        const m = at[s];
        log(
          `soak ${method} step ${s}/${steps}: rss ${m.rss.toFixed(1)} MB, js heap ${m.heap.toFixed(1)} MB, ` +
            `buffers ${m.external.toFixed(1)} MB (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
        );
      }
    },
  });
  const [start, middle, end] = [at[1], at[mid], at[steps]];
  const ratio = end.rss / middle.rss;
  const heapRatio = end.heap / middle.heap; // an accumulating JS array shows here first
  const ok = ratio < LIMIT && heapRatio < LIMIT;
  log(
    `soak_rss_growth: rss start ${start.rss.toFixed(1)} MB, middle ${middle.rss.toFixed(1)} MB, end ` +
      `${end.rss.toFixed(1)} MB: end/middle = ${ratio.toFixed(4)} (${ok ? "ok" : "FAIL"}: must be < ${LIMIT}); ` +
      `js heap end/middle = ${heapRatio.toFixed(4)} (must be < ${LIMIT} too); ${alarms} training alarms not shown`,
  );
  if (json)
    process.stdout.write(
      `${JSON.stringify({ name: "soak_rss_growth", nrt: end.rss, peer: middle.rss, unit: "MB", ratio })}\n`,
    );
  if (!ok) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
