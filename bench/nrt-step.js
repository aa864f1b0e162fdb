// `node bench/nrt-step.js [--json] [--rounds N] [--reps R]`: the `nrt_step` line of `npm run bench` (issue 6).
//
// One full NRT step on the reference model of issue 5 (Llama V=512, C=128, 4 layers, 4 heads, F=384, untied):
//   rollout  32 questions × K = 8 traces, temperature 1, trace limit 64, stop at any special token (SPEC §2)
//   score    the K traces and the empty trace of every question in ONE batched forward (SPEC §2 sequences
//            prompt ⊕ z ⊕ ⟨answer_start⟩ ⊕ y*), then rewards, advantages and per-token weights (SPEC §3–4 defaults:
//            ws_nlog, none, group_std, fixed, λ_fmt 0.3)
//   update   backward on that forward, global-norm clip 1, AdamW
// nrt: the library in dist/, the pieces src/train/trainer.ts's nrtStep uses (NativeEngine sample/score/step,
// toTraces, packNrtBatch, scorePacked), phases timed where the trainer times them (time/rollout_ms, score_ms,
// update_ms). PyTorch: bench/peer_nrt_step.py, the same step written the PyTorch way (batched KV-cache sampling,
// a padded batched forward whose graph the backward reuses, SPEC §3–4 in torch, torch.optim.AdamW).
// Both sides load the same weights (a seeded random model, written once as a flat float32 file) and the same
// prompts (⟨bos⟩ + 12–20 random ids) and answers (4–8 random ids + ⟨eos⟩); special ids 0–3 (pad, bos, eos,
// ⟨answer_start⟩). Each step starts from those weights (restored outside the timing), so every step samples from
// the same model. A random model rarely emits a special token, so most traces run to the limit, on both sides.
// Before timing, one nrt rollout is scored on both sides and the loss, gradient norm, R and A must agree.
//
// Every thread setting of bench/_workers.js (SETTINGS) is a worker process; they run interleaved, a chunk of
// `reps` steps per setting per round, alternating sides (order reversed every other round), after one warm-up
// step each; a setting over 3x slower than its side's best in the warm-up, or 2x in round 1, is dropped (what it
// measured so far is still listed). A setting's value is the median of its step times; each side is reported at
// its fastest setting, and its phase times are the medians of that setting's per-step phase times (so they need
// not add up exactly to the median step).
// The human report goes to stderr. With --json, stdout gets the SPEC §8 line
//   {"name":"nrt_step","nrt":ms,"peer":ms,"unit":"ms","ratio":nrt/peer}
// and, in the same format, one line per phase of the two best settings:
//   {"name":"nrt_step_rollout"|"nrt_step_score"|"nrt_step_update","nrt":ms,"peer":ms,"unit":"ms","ratio"}
// Needs dist/ (npx tsc -p tsconfig.json), the addon and /usr/bin/python3 with torch.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NativeEngine } from "../dist/engine/native.js";
import { llamaConfig } from "../dist/model/config.js";
import { Model } from "../dist/model/model.js";
import { native, setThreads } from "../dist/model/native.js";
import { resolveObjective } from "../dist/nrt/methods.js";
import { sampleParams, toTraces } from "../dist/rollout/rollout.js";
import { packNrtBatch, scorePacked } from "../dist/train/nrt-batch.js";
import { Rng } from "../dist/util/rng.js";
import { PYTHON, SETTINGS, serveLines, Worker } from "./_workers.js";

/** The reference model of issue 5 and the step's sizes. */
const REF = {
  model: {
    vocabSize: 512,
    hiddenSize: 128,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 4,
    intermediateSize: 384,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
  },
  G: 32,
  K: 8,
  maxTraceTokens: 64,
  temperature: 1,
};
const SPECIAL = { pad: 0, bos: 1, eos: 2, answerStart: 3 };
/** The trainer's defaults (src/config/train-config.ts): lr 3e-4, β (0.9, 0.95), ε 1e-8, no weight decay, clip 1. */
const ADAMW = { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clip: 1 };
const PRUNE = 2;

const argv = process.argv.slice(2);
const json = argv.includes("--json");
const opt = (flag, def) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : def);
const log = (s) => process.stderr.write(`${s}\n`);
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const here = (f) => fileURLToPath(new URL(f, import.meta.url));

// ---- the workload, written once for both sides ------------------------------------------------------------------

function writeJob(dir) {
  const config = llamaConfig({ ...REF.model, bosTokenId: SPECIAL.bos, eosTokenId: SPECIAL.eos });
  config.answerStartTokenId = SPECIAL.answerStart;
  const model = Model.init(config, 7);
  const rng = new Rng(11);
  const ids = (n) => Array.from({ length: n }, () => rng.int(4, REF.model.vocabSize - 1));
  const prompts = Array.from({ length: REF.G }, () => [SPECIAL.bos, ...ids(rng.int(12, 20))]);
  const answers = Array.from({ length: REF.G }, () => [...ids(rng.int(4, 8)), SPECIAL.eos]);
  const job = {
    config,
    table: model.table,
    prompts,
    answers,
    k: REF.K,
    maxTraceTokens: REF.maxTraceTokens,
    temperature: REF.temperature,
    specialIds: Object.values(SPECIAL),
    answerStartId: SPECIAL.answerStart,
    objective: resolveObjective({}),
    adamw: ADAMW,
  };
  writeFileSync(join(dir, "job.json"), JSON.stringify(job));
  writeFileSync(join(dir, "params.bin"), model.params);
  return { job, params: model.numParams };
}

// ---- the nrt worker: `node nrt-step.js --worker JOB_DIR --threads T` --------------------------------------------

function nrtWorker(dir, threads) {
  setThreads(threads);
  const job = JSON.parse(readFileSync(join(dir, "job.json"), "utf8"));
  const buf = readFileSync(join(dir, "params.bin"));
  const initial = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
  const model = new Model(job.config, initial.slice());
  const engine = new NativeEngine(model);
  const groups0 = job.prompts.map((prompt, g) => ({ prompt, answer: job.answers[g] }));
  const params = (seed) =>
    sampleParams({
      k: job.k,
      temperature: job.temperature,
      topP: 1,
      topK: 0,
      maxTraceTokens: job.maxTraceTokens,
      seed,
      answerStartId: job.answerStartId,
      specialIds: job.specialIds,
    });
  const score = (traces) => {
    const groups = groups0.map((q, g) => ({ ...q, traces: traces[g] }));
    const pack = packNrtBatch(groups, job.answerStartId);
    return scorePacked(pack, groups, engine.score(pack.seqs), job.objective);
  };
  /** one NRT step, timed by phase as src/train/trainer.ts's nrtStep times it */
  const step = (seed) => {
    model.params.set(initial);
    const t0 = performance.now();
    engine.syncSampler();
    const traces = toTraces(engine.sample(job.prompts, params(seed)), job.answerStartId);
    const t1 = performance.now();
    const scored = score(traces);
    const t2 = performance.now();
    const r = engine.step(scored.seqs, scored.weights, ADAMW);
    const t3 = performance.now();
    if (!r.applied) throw new Error(`step not applied (loss ${r.loss})`);
    const flat = traces.flat();
    return {
      total: t3 - t0,
      rollout: t1 - t0,
      score: t2 - t1,
      update: t3 - t2,
      traceTokens: flat.reduce((a, t) => a + t.tokens.length, 0),
      emitted: flat.filter((t) => t.emitted).length,
      truncated: flat.filter((t) => t.truncated).length,
      loss: r.loss,
    };
  };
  /** a rollout from the initial weights, its loss, gradient norm, R and A (no update) */
  const check = (seed) => {
    model.params.set(initial);
    const traces = toTraces(engine.sample(job.prompts, params(seed)), job.answerStartId);
    const scored = score(traces);
    const grads = model.zeros();
    const loss = model.runner.backward(scored.weights, grads);
    return {
      traces: traces.map((g) => g.map((t) => ({ tokens: t.tokens, emitted: t.emitted }))),
      loss,
      gradNorm: native().gradNorm(grads),
      R: scored.scores.map((s) => s.R),
      A: scored.scores.map((s) => s.A),
    };
  };
  const answer = (cmd) => {
    switch (cmd.op) {
      case "info":
        return { threads: native().getThreads(), params: model.numParams };
      case "step":
        return { values: Array.from({ length: cmd.reps }, (_, r) => step(cmd.seed + r)) };
      case "check":
        return check(cmd.seed);
      default:
        return { error: `unknown op ${cmd.op}` };
    }
  };
  serveLines(answer);
}

// ---- the driver ----------------------------------------------------------------------------------------------------

/** One worker process (an nrt or PyTorch thread setting) answering one JSON command a line. */
class StepWorker extends Worker {
  constructor(side, setting, dir) {
    const env = { ...process.env, OMP_NUM_THREADS: String(setting.threads) };
    if (setting.passive) env.OMP_WAIT_POLICY = "passive";
    else delete env.OMP_WAIT_POLICY;
    let cmd = process.execPath;
    let args = [here("./nrt-step.js"), "--worker", dir, "--threads", `${setting.threads}`];
    if (side === "peer") {
      env.OPENBLAS_NUM_THREADS = String(setting.blas);
      cmd = PYTHON;
      args = [here("./peer_nrt_step.py"), "--threads", `${setting.threads}`, "serve", dir];
    }
    super(side, setting, { cmd, args, env });
    this.values = [];
  }
}

const relDiff = (a, b) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);
const maxAbsDiff = (a, b) => Math.max(...a.flat().map((x, i) => Math.abs(x - b.flat()[i])));

/** Scores one nrt rollout on both sides; throws unless loss, gradient norm, R and A agree. */
async function checkSame(nrt, peer) {
  const a = await nrt.ask({ op: "check", seed: 12345 });
  const b = await peer.ask({ op: "check", traces: a.traces });
  const d = {
    loss: relDiff(a.loss, b.loss),
    gradNorm: relDiff(a.gradNorm, b.gradNorm),
    R: maxAbsDiff(a.R, b.R) / Math.max(...a.R.flat().map(Math.abs)),
    A: maxAbsDiff(a.A, b.A),
  };
  log(
    `  same step on both sides (one nrt rollout scored by each): loss ${a.loss.toPrecision(6)} vs ` +
      `${b.loss.toPrecision(6)}, grad norm ${a.gradNorm.toPrecision(6)} vs ${b.gradNorm.toPrecision(6)}; ` +
      `rel. diff loss ${d.loss.toExponential(1)}, grad norm ${d.gradNorm.toExponential(1)}, R ` +
      `${d.R.toExponential(1)}, max |ΔA| ${d.A.toExponential(1)}`,
  );
  if (!(d.loss < 1e-3 && d.gradNorm < 1e-3 && d.R < 1e-3 && d.A < 1e-2))
    throw new Error("nrt and the PyTorch peer disagree on the same traces: not the same step");
}

const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
const PHASES = ["rollout", "score", "update"];

async function main() {
  const rounds = Number(opt("--rounds", "4"));
  const reps = Number(opt("--reps", "1"));
  const dir = mkdtempSync(join(tmpdir(), "nrt-step-bench-"));
  const workers = [];
  try {
    const { params } = writeJob(dir);
    for (const side of ["nrt", "peer"]) for (const s of SETTINGS[side]) workers.push(new StepWorker(side, s, dir));
    const mine = workers.filter((w) => w.side === "nrt");
    const theirs = workers.filter((w) => w.side === "peer");
    const info = await theirs[0].ask({ op: "info" });
    if (info.params !== params) throw new Error(`parameter counts differ: nrt ${params}, PyTorch ${info.params}`);
    const load0 = loadavg()[0];
    log(
      `nrt_step: Llama V=${REF.model.vocabSize} C=${REF.model.hiddenSize} L=${REF.model.numLayers} ` +
        `heads=${REF.model.numHeads} F=${REF.model.intermediateSize} untied (${params} parameters); ` +
        `G=${REF.G} × K=${REF.K} traces ≤ ${REF.maxTraceTokens} tokens; torch ${info.torch}; ` +
        `rounds ${rounds} × ${reps} step(s)`,
    );
    await checkSame(mine[0], theirs[0]);
    let order = [];
    for (let i = 0; i < Math.max(mine.length, theirs.length); i++) order.push(...[mine[i], theirs[i]].filter(Boolean));
    let seed = 1;
    const run = async (w, n) => {
      const { values } = await w.ask({ op: "step", reps: n, seed });
      seed += n;
      return values;
    };
    const best = (list) => list.reduce((a, w) => (w.median < a.median ? w : a));
    const prune = (factor, when) => {
      const keep = (w) => w.median / best(order.filter((x) => x.side === w.side)).median <= factor;
      for (const w of order.filter((x) => !keep(x)))
        log(`  nrt_step: dropped ${w.label} (over ${factor}x slower ${when})`);
      order = order.filter(keep);
    };
    // warm-up (not counted); a setting over 1.5·PRUNE times slower than its side's best here is not run further
    for (const w of order) w.median = (await run(w, 1))[0].total;
    prune(1.5 * PRUNE, "in the warm-up");
    for (let r = 0; r < rounds; r++) {
      for (const w of r % 2 ? [...order].reverse() : order) w.values.push(...(await run(w, reps)));
      for (const w of order) w.median = median(w.values.map((v) => v.total));
      if (r === 0) prune(PRUNE, "in round 1");
      const b = (side) => best(order.filter((w) => w.side === side));
      log(`  nrt_step: round ${r + 1}/${rounds}: nrt ${fmt(b("nrt").median)} ms, PyTorch ${fmt(b("peer").median)} ms`);
    }
    const measured = workers.filter((w) => w.values.length);
    const nb = best(measured.filter((w) => w.side === "nrt"));
    const pb = best(measured.filter((w) => w.side === "peer"));
    const ph = (w, k) => median(w.values.map((v) => v[k]));
    const ratio = nb.median / pb.median;
    log(`\nload average: ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end`);
    const rows = [["nrt_step (ms)", "nrt", "PyTorch", "nrt/PyTorch"]];
    for (const k of PHASES) rows.push([`  ${k}`, fmt(ph(nb, k)), fmt(ph(pb, k)), (ph(nb, k) / ph(pb, k)).toFixed(3)]);
    rows.push(["  step", fmt(nb.median), fmt(pb.median), `${ratio.toFixed(3)} (target <= 1.0)`]);
    const per = (w, k) => (median(w.values.map((v) => v[k])) / (REF.G * REF.K)).toFixed(1);
    const frac = (w, k) => `${((100 * median(w.values.map((v) => v[k]))) / (REF.G * REF.K)).toFixed(0)}%`;
    rows.push(["trace tokens (mean)", per(nb, "traceTokens"), per(pb, "traceTokens"), ""]);
    rows.push(["traces truncated", frac(nb, "truncated"), frac(pb, "truncated"), ""]);
    rows.push(["setting", nb.label, pb.label, ""]);
    const width = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
    for (const row of rows) log(row.map((x, c) => x.padEnd(width[c])).join("  "));
    const listed = (w) => `${w.label} ${fmt(w.median)}${w.values.length ? "" : " (warm-up)"}`;
    log(`median step of every setting (ms): ${workers.map(listed).join("; ")}`);
    if (json) {
      const line = (name, nrt, peer) =>
        `${JSON.stringify({ name, nrt: +fmt(nrt), peer: +fmt(peer), unit: "ms", ratio: +(nrt / peer).toFixed(3) })}\n`;
      process.stdout.write(line("nrt_step", nb.median, pb.median));
      for (const k of PHASES) process.stdout.write(line(`nrt_step_${k}`, ph(nb, k), ph(pb, k)));
    }
  } finally {
    for (const w of workers) w.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (argv.includes("--worker")) nrtWorker(opt("--worker", ""), Number(opt("--threads", "1")));
else
  main().catch((e) => {
    log(`nrt_step failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  });
