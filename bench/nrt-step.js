// `node bench/nrt-step.js [--json] [--rounds N] [--reps R] [--shape ref|135m] [--full]`: the `nrt_step` line of
// `npm run bench` (issue 6), and with --shape 135m the `nrt_step_135m` line.
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
//
// --shape 135m: the same step at SmolLM2-135M's shape (V=49152, C=576, 30 layers, 9 heads / 3 KV heads of 64
// (GQA), F=1536, tied embeddings, rms eps 1e-5, rope theta 1e5; random weights, Model.init std 0.02), G = 8 × K = 8
// traces ≤ 128 tokens, training a LoRA adapter (rank 16, alpha 32, q/k/v/o/gate/up/down; the base frozen) on both
// sides: nrt's Model.withAdapter + NativeEngine (AdamW over the adapter's buffer), PyTorch's hand-written LoRA
// (x W^T + (x A^T) B^T · alpha/R, base requires_grad=False, AdamW over the adapter's tensors), both loading the
// same adapter (adapter.bin + its table, written like params.bin). ~10k tokens are scored: each side splits them
// into micro-batches (nrt: its auto rule, 4 GB of activations; PyTorch: SMOL.peerMicroBatchTokens), so the
// score's forward is not kept and the update runs each micro-batch's forward again, then its backward. A step
// takes minutes, so the schedule is shorter (scheduleLong): every thread setting runs a probe (a short step: traces
// of at most 8 tokens, 2 questions scored and trained on), only each side's fastest goes on; the check (an nrt rollout scored by both, backward included) is the warm-up; then
// --rounds (default 1) × --reps (default 1) steps per side. Lines nrt_step_135m and nrt_step_135m_<phase>; with
// --full also the same step with full fine-tuning (every parameter trained), the line nrt_step_135m_full.
// Needs dist/ (npx tsc -p tsconfig.json), the addon and /usr/bin/python3 with torch.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { microBatches, microBatchLimit } from "../dist/engine/micro-batch.js";
import { NativeEngine } from "../dist/engine/native.js";
import { llamaConfig } from "../dist/model/config.js";
import { LORA_TARGETS, LoraAdapter } from "../dist/model/lora.js";
import { Model } from "../dist/model/model.js";
import { native, setThreads } from "../dist/model/native.js";
import { resolveObjective } from "../dist/nrt/methods.js";
import { sampleParams, toTraces } from "../dist/rollout/rollout.js";
import { packNrtBatch, scorePacked } from "../dist/train/nrt-batch.js";
import { Rng } from "../dist/util/rng.js";
import { PYTHON, SETTINGS, serveLines, Worker } from "./_workers.js";

/** The reference model of issue 5 and the step's sizes. */
const REF = {
  name: "nrt_step",
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
/**
 * `--shape 135m`: SmolLM2-135M's shape (GQA 9/3 heads of 64, tied embeddings), random weights, a LoRA adapter
 * (rank 16, alpha 32, all seven projections) trained over the frozen base, G = 8 × K = 8 traces ≤ 128 tokens.
 */
const SMOL = {
  name: "nrt_step_135m",
  model: {
    vocabSize: 49152,
    hiddenSize: 576,
    numLayers: 30,
    numHeads: 9,
    numKvHeads: 3,
    intermediateSize: 1536,
    rmsNormEps: 1e-5,
    ropeTheta: 100000,
    maxPositionEmbeddings: 8192,
    tied: true,
  },
  G: 8,
  K: 8,
  maxTraceTokens: 128,
  temperature: 1,
  lora: { rank: 16, alpha: 32, targets: [...LORA_TARGETS] },
  /**
   * Tokens per PyTorch micro-batch (6 sequences here): the score's forward runs under no_grad a micro-batch at a
   * time, the update runs each micro-batch's forward again with autograd and its backward (gradient accumulation),
   * as nrt does with its own (--micro-batch-tokens 0, auto: 4 GB of activations, 2,899 tokens at this shape) since
   * one pass would hold ~15 GB (nrt) and more in PyTorch. PyTorch's fastest size on this machine: 600–1,000
   * tokens ran 10–30% faster per token than 1,300–2,900 (no_grad and autograd alike), ~4 MB a token with autograd.
   */
  peerMicroBatchTokens: 1000,
};
const SPECIAL = { pad: 0, bos: 1, eos: 2, answerStart: 3 };
/** The trainer's defaults (src/config/train-config.ts): lr 3e-4, β (0.9, 0.95), ε 1e-8, no weight decay, clip 1. */
const ADAMW = { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clip: 1 };
const PRUNE = 2;

const argv = process.argv.slice(2);
const json = argv.includes("--json");
const shape = argv.includes("--shape") ? argv[argv.indexOf("--shape") + 1] : "ref";
const opt = (flag, def) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : def);
const log = (s) => process.stderr.write(`${s}\n`);
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const here = (f) => fileURLToPath(new URL(f, import.meta.url));

// ---- the workload, written once for both sides ------------------------------------------------------------------

/** The seeded random model of a shape (Model.init std 0.02), made once for every job of a run. */
function makeModel(W) {
  const config = llamaConfig({ ...W.model, bosTokenId: SPECIAL.bos, eosTokenId: SPECIAL.eos });
  config.answerStartTokenId = SPECIAL.answerStart;
  return Model.init(config, 7);
}

/**
 * Writes job.json and params.bin into `dir`; with `lora`, also the adapter (adapter.bin, its table in job.json):
 * A as PEFT initialises it, B random N(0, 0.02) instead of PEFT's zeros, so that the check before timing tests the
 * adapter's forward as well (the timed work is the same either way).
 */
function writeJob(dir, W, model, lora = null) {
  const rng = new Rng(11);
  const ids = (n) => Array.from({ length: n }, () => rng.int(4, W.model.vocabSize - 1));
  const prompts = Array.from({ length: W.G }, () => [SPECIAL.bos, ...ids(rng.int(12, 20))]);
  const answers = Array.from({ length: W.G }, () => [...ids(rng.int(4, 8)), SPECIAL.eos]);
  const job = {
    config: model.config,
    table: model.table,
    prompts,
    answers,
    k: W.K,
    maxTraceTokens: W.maxTraceTokens,
    temperature: W.temperature,
    specialIds: Object.values(SPECIAL),
    answerStartId: SPECIAL.answerStart,
    objective: resolveObjective({}),
    adamw: ADAMW,
  };
  if (W.peerMicroBatchTokens) job.peerMicroBatchTokens = W.peerMicroBatchTokens;
  let trained = model.numParams;
  if (lora) {
    const adapter = LoraAdapter.init(model.config, lora, 13);
    const r = new Rng(17);
    for (const p of adapter.table) {
      if (!p.name.endsWith(".lora_B.weight")) continue;
      const v = adapter.view(p.name);
      for (let i = 0; i < v.length; i++) v[i] = 0.02 * r.normal();
    }
    job.lora = { ...lora, table: adapter.table };
    writeFileSync(join(dir, "adapter.bin"), adapter.params);
    trained = adapter.params.length;
  }
  writeFileSync(join(dir, "job.json"), JSON.stringify(job));
  writeFileSync(join(dir, "params.bin"), model.params);
  return { job, params: model.numParams, trained };
}

// ---- the nrt worker: `node nrt-step.js --worker JOB_DIR --threads T` --------------------------------------------

function nrtWorker(dir, threads) {
  setThreads(threads);
  const job = JSON.parse(readFileSync(join(dir, "job.json"), "utf8"));
  const floats = (file) => {
    const buf = readFileSync(join(dir, file));
    return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  };
  // what each step starts from: the trained buffer (the whole model, or with an adapter the adapter's)
  let model;
  let initial;
  if (job.lora) {
    const { rank, alpha, targets } = job.lora;
    initial = floats("adapter.bin").slice();
    const adapter = new LoraAdapter(job.config, { rank, alpha, targets }, initial.slice());
    model = new Model(job.config, floats("params.bin")).withAdapter(adapter);
  } else {
    initial = floats("params.bin").slice();
    model = new Model(job.config, initial.slice());
  }
  const engine = new NativeEngine(model);
  const groups0 = job.prompts.map((prompt, g) => ({ prompt, answer: job.answers[g] }));
  const params = (seed, maxTraceTokens = job.maxTraceTokens) =>
    sampleParams({
      k: job.k,
      temperature: job.temperature,
      topP: 1,
      topK: 0,
      maxTraceTokens,
      seed,
      answerStartId: job.answerStartId,
      specialIds: job.specialIds,
    });
  const score = (traces) => {
    const groups = traces.map((t, g) => ({ ...groups0[g], traces: t })); // the first traces.length questions
    const pack = packNrtBatch(groups, job.answerStartId);
    return scorePacked(pack, groups, engine.score(pack.seqs), job.objective);
  };
  /** one NRT step, timed by phase as src/train/trainer.ts's nrtStep times it */
  const step = (seed) => {
    model.trainable.set(initial);
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
    model.trainable.set(initial);
    const traces = toTraces(engine.sample(job.prompts, params(seed)), job.answerStartId);
    const scored = score(traces);
    const grads = model.zeros();
    // as the engine's step: one backward on the score's forward, or each micro-batch's forward + backward
    const runs = microBatches(scored.seqs, microBatchLimit(model.config, scored.seqs, engine.microBatchTokens));
    let loss = 0;
    if (!runs) loss = model.runner.backward(scored.weights, grads);
    for (const run of runs ?? []) {
      model.runner.forward(run.tokens, run.lens);
      loss += model.runner.backward(scored.weights.subarray(run.from, run.to), grads);
    }
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
        return { threads: native().getThreads(), params: model.numParams, trained: model.trainable.length };
      case "step":
        return { values: Array.from({ length: cmd.reps }, (_, r) => step(cmd.seed + r)) };
      case "check":
        return check(cmd.seed);
      case "probe": {
        // a short step, for choosing a thread setting: every trace (at most cmd.tokens tokens), then the score
        // and the update of the first cmd.groups questions only
        model.trainable.set(initial);
        const t0 = performance.now();
        const traces = toTraces(engine.sample(job.prompts, params(cmd.seed, cmd.tokens)), job.answerStartId);
        const scored = score(traces.slice(0, cmd.groups));
        engine.step(scored.seqs, scored.weights, ADAMW);
        return { ms: performance.now() - t0 };
      }
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
    this.proc.stdin.on("error", () => {}); // closing a stopped worker (see scheduleLong)
    this.values = [];
  }
}

const relDiff = (a, b) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);
const maxAbsDiff = (a, b) => Math.max(...a.flat().map((x, i) => Math.abs(x - b.flat()[i])));

/** Scores one nrt rollout on both sides; throws unless loss, gradient norm, R and A agree. */
async function checkSame(nrt, peer, name) {
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
    throw new Error(`${name}: nrt and the PyTorch peer disagree on the same traces: not the same step`);
}

const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
const PHASES = ["rollout", "score", "update"];
const best = (list) => list.reduce((a, w) => (w.median < a.median ? w : a));

/**
 * The small line's schedule: every thread setting, the check, one warm-up step each, `rounds` rounds of `reps`
 * steps, settings over PRUNE times slower than their side's best dropped.
 */
async function schedule(W, workers, rounds, reps) {
  const mine = workers.filter((w) => w.side === "nrt");
  const theirs = workers.filter((w) => w.side === "peer");
  await checkSame(mine[0], theirs[0], W.name);
  let order = [];
  for (let i = 0; i < Math.max(mine.length, theirs.length); i++) order.push(...[mine[i], theirs[i]].filter(Boolean));
  let seed = 1;
  const run = async (w, n) => {
    const { values } = await w.ask({ op: "step", reps: n, seed });
    seed += n;
    return values;
  };
  const prune = (factor, when) => {
    const keep = (w) => w.median / best(order.filter((x) => x.side === w.side)).median <= factor;
    for (const w of order.filter((x) => !keep(x)))
      log(`  ${W.name}: dropped ${w.label} (over ${factor}x slower ${when})`);
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
    log(`  ${W.name}: round ${r + 1}/${rounds}: nrt ${fmt(b("nrt").median)} ms, PyTorch ${fmt(b("peer").median)} ms`);
  }
}

/**
 * The probe, a short step: the rollout of all G·K traces at most `tokens` long (a prefill and a few decoding
 * steps, at the step's batch size), then the score and the update of the first `groups` questions (~450 tokens),
 * so that every phase counts. Once per setting, as the worker's first step (so every setting starts cold alike).
 */
const PROBE = { tokens: 8, groups: 2 };

/** `promise`'s value, or null if it takes over `ms` (no limit when `ms` is infinite) */
function within(promise, ms) {
  if (!Number.isFinite(ms)) return promise;
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * The 135m schedule (a step takes minutes, so no full step per setting): every thread setting runs the probe and
 * only each side's fastest goes on; the check then serves as the warm-up (it runs the rollout, the score and the
 * update's forward + backward: all of a step but AdamW), then `rounds` rounds of `reps` steps, alternating sides.
 */
async function scheduleLong(name, workers, spawn, settings, rounds, reps) {
  // The settings one at a time, alternating sides. A worker is closed as soon as it is not its side's fastest
  // (each holds a 135M model and its buffers), and stopped if its probe takes over PRUNE times the side's fastest
  // setting's so far.
  const fastest = {};
  const n = Math.max(settings.nrt.length, settings.peer.length);
  for (let i = 0; i < n; i++)
    for (const side of ["nrt", "peer"]) {
      const s = settings[side][i];
      if (!s) continue;
      const w = workers.find((x) => x.side === side && x.setting === s) ?? spawn(side, s);
      await w.ask({ op: "info" }); // loaded: the limit below is the probe's alone
      const limit = PRUNE * (fastest[side]?.probe ?? Number.POSITIVE_INFINITY);
      const asked = w.ask({ op: "probe", seed: 99, ...PROBE });
      asked.catch(() => {}); // a stopped worker's answer never comes
      w.probe = (await within(asked, limit))?.ms ?? null;
      if (w.probe === null) {
        log(`  ${name}: stopped ${w.label} (probe over ${fmt(limit)} ms, ${PRUNE}x the fastest ${side} setting's)`);
        w.proc.kill();
        continue;
      }
      w.median = w.probe;
      const old = fastest[side];
      if (!old || w.probe < old.probe) fastest[side] = w;
      (fastest[side] === w ? old : w)?.close();
    }
  const probed = workers.map((w) => `${w.label} ${w.probe === null ? "stopped" : fmt(w.probe)}`);
  log(`  ${name}: probe (ms): ${probed.join("; ")}`);
  const order = [fastest.nrt, fastest.peer];
  await checkSame(order[0], order[1], name);
  let seed = 1;
  for (let r = 0; r < rounds; r++) {
    for (const w of r % 2 ? [...order].reverse() : order) {
      const { values } = await w.ask({ op: "step", reps, seed });
      seed += reps;
      w.values.push(...values);
      w.median = median(w.values.map((v) => v.total));
    }
    log(`  ${name}: round ${r + 1}/${rounds}: nrt ${fmt(order[0].median)} ms, PyTorch ${fmt(order[1].median)} ms`);
  }
  return order;
}

/** One measurement: a job in a fresh directory, the workers of `settings`, the schedule; the two best settings. */
async function measure(W, model, lora, settings, rounds, reps) {
  const dir = mkdtempSync(join(tmpdir(), "nrt-step-bench-"));
  const workers = [];
  try {
    const { params, trained } = writeJob(dir, W, model, lora);
    const spawn = (side, s) => {
      const w = new StepWorker(side, s, dir);
      workers.push(w);
      return w;
    };
    // 135m: the workers are started one at a time by scheduleLong (this one first)
    if (W.lora) spawn("peer", settings.peer[0]);
    else for (const side of ["nrt", "peer"]) for (const s of settings[side]) spawn(side, s);
    const info = await workers.find((w) => w.side === "peer").ask({ op: "info" });
    if (info.params !== params) throw new Error(`parameter counts differ: nrt ${params}, PyTorch ${info.params}`);
    if (info.trained !== trained) throw new Error(`trained counts differ: nrt ${trained}, PyTorch ${info.trained}`);
    const load0 = loadavg()[0];
    const m = W.model;
    const name = `${W.name}${lora || !W.lora ? "" : "_full"}`;
    const what = lora
      ? `LoRA rank ${lora.rank} alpha ${lora.alpha} on ${lora.targets.length} projections (${trained} trained, base frozen)`
      : W.lora
        ? `full fine-tuning (all ${params} trained)`
        : "";
    log(
      `${name}: Llama V=${m.vocabSize} C=${m.hiddenSize} L=${m.numLayers} ` +
        `heads=${m.numHeads}${m.numKvHeads === m.numHeads ? "" : `/${m.numKvHeads} kv`} F=${m.intermediateSize} ` +
        `${m.tied ? "tied" : "untied"} (${params} parameters)${what ? `; ${what}` : ""}; ` +
        `G=${W.G} × K=${W.K} traces ≤ ${W.maxTraceTokens} tokens; torch ${info.torch}; ` +
        `rounds ${rounds} × ${reps} step(s)`,
    );
    if (W.lora) await scheduleLong(name, workers, spawn, settings, rounds, reps);
    else await schedule(W, workers, rounds, reps);
    const measured = workers.filter((w) => w.values.length);
    const nb = best(measured.filter((w) => w.side === "nrt"));
    const pb = best(measured.filter((w) => w.side === "peer"));
    return { nb, pb, workers, load0, load1: loadavg()[0] };
  } finally {
    for (const w of workers) w.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The human report (stderr) of a measurement; its SPEC §8 lines, `name` and `name_<phase>`, for --json. */
function report(W, name, { nb, pb, workers, load0, load1 }) {
  const ph = (w, k) => median(w.values.map((v) => v[k]));
  const ratio = nb.median / pb.median;
  log(`\nload average: ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} at the end`);
  const rows = [[`${name} (ms)`, "nrt", "PyTorch", "nrt/PyTorch"]];
  for (const k of PHASES) rows.push([`  ${k}`, fmt(ph(nb, k)), fmt(ph(pb, k)), (ph(nb, k) / ph(pb, k)).toFixed(3)]);
  rows.push(["  step", fmt(nb.median), fmt(pb.median), `${ratio.toFixed(3)} (target <= 1.0)`]);
  const per = (w, k) => (median(w.values.map((v) => v[k])) / (W.G * W.K)).toFixed(1);
  const frac = (w, k) => `${((100 * median(w.values.map((v) => v[k]))) / (W.G * W.K)).toFixed(0)}%`;
  rows.push(["trace tokens (mean)", per(nb, "traceTokens"), per(pb, "traceTokens"), ""]);
  rows.push(["traces truncated", frac(nb, "truncated"), frac(pb, "truncated"), ""]);
  rows.push(["setting", nb.label, pb.label, ""]);
  const width = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  for (const row of rows) log(row.map((x, c) => x.padEnd(width[c])).join("  "));
  const listed = (w) =>
    w.values.length
      ? `${w.label} ${fmt(w.median)}`
      : `${w.label} ${fmt(w.median)} (${w.probe === undefined ? "warm-up" : "probe only"})`;
  if (!W.lora) log(`median step of every setting (ms): ${workers.map(listed).join("; ")}`);
  else
    log(
      `step times (ms): nrt ${nb.values.map((v) => fmt(v.total)).join(", ")}; PyTorch ${pb.values.map((v) => fmt(v.total)).join(", ")}`,
    );
  const line = (n, nrt, peer) =>
    `${JSON.stringify({ name: n, nrt: +fmt(nrt), peer: +fmt(peer), unit: "ms", ratio: +(nrt / peer).toFixed(3) })}\n`;
  return [line(name, nb.median, pb.median), ...PHASES.map((k) => line(`${name}_${k}`, ph(nb, k), ph(pb, k)))];
}

async function main() {
  if (shape !== "ref" && shape !== "135m") throw new Error(`--shape: ref or 135m, not ${shape}`);
  const W = shape === "135m" ? SMOL : REF;
  const rounds = Number(opt("--rounds", W === SMOL ? "1" : "4"));
  const reps = Number(opt("--reps", "1"));
  const model = makeModel(W);
  const lines = report(W, W.name, await measure(W, model, W.lora ?? null, SETTINGS, rounds, reps));
  if (json) process.stdout.write(lines[0] + lines.slice(1).join(""));
  if (W.lora && argv.includes("--full")) {
    // the same step with full fine-tuning (every parameter trained): one line, nrt_step_135m_full
    const full = report(W, `${W.name}_full`, await measure(W, model, null, SETTINGS, rounds, reps));
    if (json) process.stdout.write(full[0]);
  }
}

if (argv.includes("--worker")) nrtWorker(opt("--worker", ""), Number(opt("--threads", "1")));
else
  main().catch((e) => {
    log(`nrt_step failed: ${e.stack ?? e}`);
    process.exitCode = 1;
  });
