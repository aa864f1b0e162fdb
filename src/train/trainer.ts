/**
 * The NRT trainer: one loop for every method of SPEC §5.
 *
 * Each step: sample K traces per question (rollout) → rebuild prompt ⊕ z ⊕ ⟨answer_start⟩ ⊕ y* and the empty
 * trace, score them in ONE forward pass → rewards, baselines, advantages, token weights (src/nrt) → per-token
 * weights → ONE backward → AdamW. With several updates per rollout batch, later updates re-run the forward for
 * the ratio ρ of SPEC §4. SFT skips the rollout. Sampling, scoring and the update go through an `Engine`
 * (src/engine): in process (native) or on a server (tinker); the loop is a generator that yields the engine's
 * pending requests to its driver (`train` for in-process engines, `trainAsync` for any).
 *
 * What it simplifies: no KL term, no entropy bonus, no reference model; RLPR's optional std filter is not
 * implemented; all traces of a step are sampled by the weights at the start of the step.
 */

import { join, resolve } from "node:path";
import type { TrainConfig } from "../config/train-config.js";
import { contextLeft, type Example, recordExamples } from "../data/format.js";
import { duplicatesWarning, qaFields, readQaFile } from "../data/qa.js";
import { type Engine, type Pending, wait } from "../engine/engine.js";
import { openEngine } from "../engine/open.js";
import { NrtError } from "../errors.js";
import { appendNoFollow } from "../io/append.js";
import { writeFileAtomic } from "../io/atomic.js";
import { chatTemplateOf, type LoadedModel, loadModel, withAnswerStart } from "../io/load.js";
import { resolveModelDir, saveModelDir } from "../io/model-dir.js";
import type { SafetensorsDtype } from "../io/safetensors.js";
import { parseSize } from "../io/weights.js";
import { LoraAdapter, loraSettings } from "../model/lora.js";
import type { Model } from "../model/model.js";
import { setThreads } from "../model/native.js";
import { methods, type NrtObjective, resolveObjective } from "../nrt/methods.js";
import { sampleParams, type Trace, toTraces } from "../rollout/rollout.js";
import { Progress } from "../util/progress.js";
import { checkAlarms } from "./alarms.js";
import { checkpointName, engineResume, latestCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { type DataDigest, dataCheck } from "./data-check.js";
import { DataOrder, stepSeed } from "./data-order.js";
import { lossTerms, type Metrics, nrtMetrics, samplerGap } from "./metrics.js";
import {
  packNrtBatch,
  packSft,
  type QuestionGroup,
  ratioWeights,
  type ScoredBatch,
  scorePacked,
  termWeights,
} from "./nrt-batch.js";
import { adamwSettings } from "./optimizer.js";
import { checkResumeSettings, readRunConfig, truncateMetrics, versions } from "./run-config.js";
import {
  ALARMS_FILE,
  checkNewRunDir,
  checkResumable,
  createRunDir,
  METRICS_FILE,
  RUN_CONFIG,
  SAMPLES_FILE,
} from "./run-dir.js";
import { acquireRunLock, type RunLock } from "./run-lock.js";
import { checkStepFits } from "./step-memory.js";

/** Hooks for library users: a callback per step and their own examples instead of `data`. */
export interface TrainHooks {
  onStep?: (metrics: Metrics, step: number) => void;
  examples?: Example[];
  /** return true to stop after the current step (checkpointed) */
  shouldStop?: () => boolean;
  /** called once, when the run directory is written and locked, before the first step */
  onStarted?: () => void;
}

/** How a run starts: anew, or (`resume`) continuing the run in `cfg.out`. */
export interface RunOptions {
  resume?: boolean;
  /** --allow-data-change: resume even though the data file is not the one the run started with */
  allowDataChange?: boolean;
}

export interface TrainResult {
  outDir: string;
  steps: number;
  stopped: "done" | "interrupted";
  lastMetrics: Metrics | undefined;
}

/** The objective of a config: the method's preset, with any of the four keys given explicitly overriding it. */
export function objectiveOf(cfg: TrainConfig): NrtObjective | null {
  const preset = methods[cfg.method];
  if (preset.sft) return null;
  const { sft: _, ...choice } = preset;
  return resolveObjective({
    ...choice,
    ...(cfg.aggregation && { aggregation: cfg.aggregation }),
    ...(cfg.baseline && { baseline: cfg.baseline }),
    ...(cfg.advantage && { advantage: cfg.advantage }),
    ...(cfg.tokenWeight && { tokenWeight: cfg.tokenWeight }),
    formatCoef: cfg.formatCoef,
  });
}

const TIMING = (k: string): boolean => k.startsWith("time/") || k.endsWith("_per_s");

const SAVE_DTYPES: Record<"float32" | "bfloat16" | "float16", SafetensorsDtype> = {
  float32: "F32",
  bfloat16: "BF16",
  float16: "F16",
};

/**
 * Trains per `cfg`; with `resume`, continues the run in cfg.out from its latest checkpoint. Synchronous: the
 * process's signals are not seen while it runs (use `trainAsync` for Ctrl-C handling), and the engine must be
 * the in-process one (a server's answers are asynchronous).
 */
export function train(cfg: TrainConfig, hooks: TrainHooks = {}, resume: boolean | RunOptions = false): TrainResult {
  if (cfg.engine !== "native")
    throw new NrtError(`the ${cfg.engine} engine answers asynchronously: use trainAsync (as nrt train does)`, "train");
  const run = runSteps(cfg, hooks, resume);
  for (;;) {
    const r = run.next();
    if (r.done) return r.value;
    if (r.value instanceof Promise) throw new Error("an in-process engine returned a promise"); // never: see above
  }
}

/**
 * `train`, yielding to the event loop after each step so that SIGINT/SIGTERM are seen: the current step finishes,
 * a checkpoint is written and the result says "interrupted". (A synchronous loop never lets Node run a signal
 * handler, so `train` cannot do this.) The handlers are installed only once the run directory is written: during
 * start-up (reading data, rendering templates, a pipe with no writer) a signal keeps its default action and ends
 * the process at once, with nothing written.
 */
export async function trainAsync(
  cfg: TrainConfig,
  hooks: TrainHooks = {},
  resume: boolean | RunOptions = false,
): Promise<TrainResult> {
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    process.stderr.write("\ninterrupt: finishing this step, then writing a checkpoint…\n");
  };
  const onStarted = () => {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    hooks.onStarted?.();
  };
  try {
    const shouldStop = () => interrupted || Boolean(hooks.shouldStop?.());
    const run = runSteps(cfg, { ...hooks, shouldStop, onStarted }, resume);
    let r = run.next();
    while (!r.done) {
      if (r.value instanceof Promise) {
        // an engine's request: resume the loop with its answer, or throw its error where it was awaited
        let answer: unknown;
        try {
          answer = await r.value;
        } catch (e) {
          r = run.throw(e);
          continue;
        }
        r = run.next(answer);
      } else {
        await new Promise((res) => setImmediate(res)); // after a step: let signals in
        r = run.next();
      }
    }
    return r.value;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** The training loop; yields the engine's pending requests, and the step number after each step. */
function* runSteps(
  cfg: TrainConfig,
  hooks: TrainHooks,
  options: boolean | RunOptions,
): Generator<number | Pending, TrainResult, unknown> {
  const { resume = false, allowDataChange = false } = typeof options === "boolean" ? { resume: options } : options;
  let lock: RunLock | undefined;
  try {
    if (resume) {
      checkResumable(cfg.out);
      lock = acquireRunLock(cfg.out); // before anything is read: a run another process trains is not touched
    } else checkNewRunDir(cfg.out);
    return yield* runLocked(cfg, hooks, resume, allowDataChange, (l) => {
      lock = l;
    });
  } finally {
    lock?.release();
  }
}

/** `runSteps` once the run directory is checked (and, to resume, locked); `locked` gets a new run's lock. */
function* runLocked(
  cfg: TrainConfig,
  hooks: TrainHooks,
  resume: boolean,
  allowDataChange: boolean,
  locked: (lock: RunLock) => void,
): Generator<number | Pending, TrainResult, unknown> {
  const out = cfg.out;
  const cfgPath = join(out, RUN_CONFIG);
  const metricsPath = join(out, METRICS_FILE);
  let startStep = 0;
  let nanSkipped = 0;
  let loaded: LoadedModel;
  const ckpt = resume ? latestCheckpoint(out) : null;
  let savedData: DataDigest | undefined;
  if (resume) {
    const run = readRunConfig(cfgPath);
    checkResumeSettings(run.train, cfg, out);
    savedData = run.data;
  }
  if (cfg.loraRank > 0 && (cfg.engine !== "native" || cfg.learner !== "native"))
    throw new NrtError(
      `LoRA trains in process: use --engine native (the ${cfg.engine} engine has its own: --engine-lora-rank)`,
      "--lora-rank",
    );
  loraSettings(cfg.loraRank, cfg.loraAlpha, cfg.loraTargets); // a bad --lora-targets is refused before any loading
  setThreads(cfg.threads);
  loaded = loadModel(ckpt ? ckpt.dir : cfg.model);
  const withAs = withAnswerStart(loaded); // SPEC §2: a model without ⟨answer_start⟩ gets one (rows of ⟨eos⟩)
  loaded = withAs.loaded;
  if (withAs.added)
    process.stderr.write(
      `added <answer_start> as token ${loaded.tokenizer.answerStartId} (vocab_size ${loaded.model.config.vocabSize}; rows copied from ⟨eos⟩)\n`,
    );
  if (!ckpt) loaded = { ...loaded, model: startingModel(loaded, cfg) };
  // checkpoints keep tokenizer.json but not the chat template: a resumed run takes it from the original model
  if (ckpt && !loaded.chatTemplate) loaded.chatTemplate = chatTemplateOf(cfg.model, loaded.tokenizer);
  const { model, tokenizer, tokenizerJson } = loaded;
  /** final/'s dtype: as told, else the input model's (a checkpoint is float32; it remembers the original's) */
  const finalDtype: SafetensorsDtype =
    cfg.saveDtype !== "auto"
      ? SAVE_DTYPES[cfg.saveDtype]
      : ((ckpt?.state.extra.saveDtype as SafetensorsDtype | undefined) ?? loaded.dtype ?? "F32");
  const answerStartId = tokenizer.answerStartId;
  if (answerStartId === null) throw new NrtError("the tokenizer has no <answer_start> token", loaded.dir);
  const specialIds = [...tokenizer.specialIds];
  /** what a checkpoint or final/ carries besides the weights: the tokenizer and its template files */
  const modelFiles = { ...loaded.tokenizerFiles, "tokenizer.json": tokenizerJson };
  let examples = hooks.examples;
  let data: DataDigest | undefined;
  if (!examples) {
    const qa = readQaFile(cfg.data, { skipInvalid: cfg.skipInvalid, fields: qaFields(cfg) });
    data = { size: qa.digest.size, sha256: qa.digest.sha256 };
    if (resume) dataCheck(savedData, data, cfg.data, out, allowDataChange);
    const maxLen = contextLeft(model.config.maxPositionEmbeddings, cfg.maxTraceTokens);
    examples = recordExamples(tokenizer, loaded.chatTemplate, qa.records, maxLen, cfg.data);
    if (qa.skipped.length > 0)
      process.stderr.write(`warning: ${cfg.data}: skipped ${qa.skipped.length} invalid record(s) (--skip-invalid)\n`);
    if (qa.duplicates > 0) process.stderr.write(`warning: ${duplicatesWarning(cfg.data, qa.duplicateLines)}\n`);
  }
  const objective = objectiveOf(cfg);
  if (cfg.engine === "native" || (cfg.engine === "openai-split" && cfg.learner === "native"))
    checkStepFits(model, cfg, examples, objective === null);
  // the engine, checked (a server: its health, model and state) before anything is written to the run directory
  const probe = examples.length > 0 ? [...examples[0].prompt, answerStartId, ...examples[0].answer] : undefined;
  const engine: Engine = yield* wait(openEngine(cfg, model, ckpt && engineResume(ckpt, model), probe, modelFiles));
  const runConfig = `${JSON.stringify({ train: cfg, versions: versions(), ...(data && { data }) }, null, 2)}\n`;
  if (!resume) locked(createRunDir(out, { [RUN_CONFIG]: runConfig }));
  else {
    if (ckpt) {
      startStep = ckpt.state.step;
      nanSkipped = ckpt.state.nanSkipped;
      truncateMetrics(metricsPath, startStep);
    } else writeFileAtomic(metricsPath, ""); // no checkpoint yet: start over
    writeFileAtomic(cfgPath, runConfig);
  }
  hooks.onStarted?.();

  const order = new DataOrder(examples.length, cfg.promptsPerStep, cfg.seed);
  const history: Metrics[] = [];
  const progress = new Progress(cfg.method, cfg.steps, cfg.progress);
  let last: Metrics | undefined;
  let step = startStep;
  /** the engine's weights into `model`, then one atomic checkpoint directory (src/train/checkpoint.ts) */
  const checkpoint = function* () {
    yield* wait(engine.pull());
    const st = yield* wait(engine.saveState(checkpointName(step)));
    const extra = { ...(st.remote && { engine: st.remote }), saveDtype: finalDtype };
    const opt = st.optimizer ?? { step: engine.updates };
    saveCheckpoint(out, model, modelFiles, opt, { step, nanSkipped, extra }, cfg.keepCheckpoints);
  };
  while (step < cfg.steps) {
    const s = step + 1;
    const t0 = performance.now();
    const batch = order.batch(s).map((i) => examples[i]);
    const logged = s === 1 || s % cfg.samplesEvery === 0;
    const m = objective
      ? yield* nrtStep(engine, loaded, batch, objective, cfg, s, answerStartId, specialIds, logged, (rows) => {
          if (logged)
            appendNoFollow(join(out, SAMPLES_FILE), rows.map((r) => `${JSON.stringify({ step: s, ...r })}\n`).join(""));
        })
      : yield* sftStep(engine, batch, cfg, answerStartId);
    step = s;
    if (typeof m === "string") {
      const msg = `step ${s}: ${m} (batch: questions at lines ${batch.map((e) => e.record.line).join(", ")})`;
      if (cfg.onNan === "stop") throw new NrtError(`${msg}; stopped, the last checkpoint is intact`, out);
      nanSkipped++;
      progress.log(`warning: ${msg}; batch skipped (${nanSkipped} so far)`);
    } else {
      m["time/step_ms"] = performance.now() - t0;
      m.nan_skipped = nanSkipped;
      last = { step: s, ...m };
      appendNoFollow(metricsPath, `${JSON.stringify(last)}\n`);
      for (const a of checkAlarms(m, history)) {
        progress.log(`alarm [${a.name}] step ${s}: ${a.message}`);
        appendNoFollow(join(out, ALARMS_FILE), `${JSON.stringify({ step: s, ...a })}\n`);
      }
      // checkAlarms reads only whether 10 steps have passed and the first step with traces: keep just those, so
      // that memory stays flat over a long run (pushing every step's metrics grew the heap ~1 KB a step)
      const firstTraces = (h: Metrics) => (h["trace/len_mean"] ?? 0) > 0;
      if (history.length < 10 || (firstTraces(m) && !history.some(firstTraces))) history.push(m);
      hooks.onStep?.(m, s);
      progress.update(s, {
        loss: m.loss,
        ...(objective && { reward: m["reward/mean"], trace: m["trace/len_mean"] }),
        "tok/s": Math.round(m.tokens_per_s),
      });
    }
    if (s % cfg.checkpointEvery === 0 || s === cfg.steps) yield* checkpoint();
    if (hooks.shouldStop?.()) {
      if (s % cfg.checkpointEvery !== 0 && s !== cfg.steps) yield* checkpoint();
      progress.done();
      process.stderr.write(`stopped after step ${s}; continue with: nrt train --resume ${out}\n`);
      return { outDir: out, steps: s, stopped: "interrupted", lastMetrics: last };
    }
    yield s;
  }
  progress.done();
  if (nanSkipped > 0) process.stderr.write(`warning: ${nanSkipped} batch(es) skipped for non-finite values\n`);
  yield* wait(engine.pull());
  saveModelDir(join(out, "final"), model, modelFiles, {
    dtype: finalDtype,
    maxShardBytes: parseSize(cfg.maxShardSize, "--max-shard-size"),
  });
  yield* wait(engine.close());
  return { outDir: out, steps: step, stopped: "done", lastMetrics: last };
}

/**
 * What a new run trains: with --lora-rank, a fresh adapter (PEFT's initialisation, seeded by --seed) over the
 * loaded model, whose directory becomes the adapter's base; else the loaded model itself. A loaded adapter is
 * merged into its base first (a run trains one adapter, or the whole model).
 */
function startingModel(loaded: LoadedModel, cfg: TrainConfig): Model {
  const settings = loraSettings(cfg.loraRank, cfg.loraAlpha, cfg.loraTargets);
  const model = loaded.model.adapter ? loaded.model.merged() : loaded.model;
  if (!settings) return model;
  const adapter = LoraAdapter.init(model.config, settings, cfg.seed);
  adapter.base = resolve(resolveModelDir(cfg.model));
  return model.withAdapter(adapter);
}

/** null if every named quantity is finite, else what is not, e.g. "non-finite loss (NaN)". */
function nonFinite(xs: Record<string, number>): string | null {
  const bad = Object.entries(xs).filter(([, v]) => !Number.isFinite(v));
  return bad.length ? `non-finite ${bad.map(([k, v]) => `${k} (${v})`).join(" and ")}` : null;
}

/** What was not finite in a step the engine refused to apply, e.g. "non-finite loss (NaN)". */
function refused(loss: number, gradNorm: number | null, lossName = "loss"): string {
  return (
    nonFinite({ [lossName]: loss, ...(gradNorm !== null && { "gradient norm": gradNorm }) }) ??
    `non-finite ${lossName} or gradient`
  );
}

/** One NRT step (rollout → score → weights → backward → AdamW), or what was non-finite (reward, loss, gradient). */
function* nrtStep(
  engine: Engine,
  { tokenizer: loadedTokenizer }: LoadedModel,
  batch: Example[],
  objective: NrtObjective,
  cfg: TrainConfig,
  step: number,
  answerStartId: number,
  specialIds: number[],
  /** a step whose samples are logged: with --term-grad-norms the per-term gradient norms are measured too */
  logged: boolean,
  onSamples: (rows: { question: string; trace: string; reference: string; reward: number }[]) => void,
): Generator<Pending, Metrics | string, unknown> {
  const t0 = performance.now();
  yield* wait(engine.syncSampler());
  const params = sampleParams({
    k: cfg.groupSize,
    temperature: cfg.temperature,
    topP: cfg.topP,
    topK: cfg.topK,
    maxTraceTokens: cfg.maxTraceTokens,
    seed: stepSeed(cfg.seed, step),
    answerStartId,
    specialIds,
  });
  const sampled = yield* wait(
    engine.sample(
      batch.map((e) => e.prompt),
      params,
    ),
  );
  const traces: Trace[][] = toTraces(sampled, answerStartId);
  const t1 = performance.now();
  const groups: QuestionGroup[] = batch.map((e, g) => ({ prompt: e.prompt, answer: e.answer, traces: traces[g] }));
  const pack = packNrtBatch(groups, answerStartId);
  const forward = yield* wait(engine.score(pack.seqs));
  let scored: ScoredBatch;
  try {
    scored = scorePacked(pack, groups, forward, objective);
  } catch (e) {
    if (e instanceof NrtError) return `non-finite reward or advantage (${e.message})`;
    throw e;
  }
  const t2 = performance.now();
  const terms = termWeights(scored);
  const metrics: Metrics = {
    ...nrtMetrics(traces, scored),
    ...samplerGap(traces, scored),
    ...lossTerms(scored, terms),
  };
  if (logged && cfg.termGradNorms && engine.gradNorms) {
    const [trace, answer, format] = yield* wait(
      engine.gradNorms(scored.seqs, [terms.trace, terms.answer, terms.format]),
    );
    Object.assign(metrics, { "grad_norm/trace": trace, "grad_norm/answer": answer, "grad_norm/format": format });
  }
  const tok = loadedTokenizer;
  onSamples(
    traces[0].slice(0, 2).map((t, k) => ({
      question: batch[0].record.question,
      trace: tok.decode(t.tokens),
      reference: batch[0].record.answer,
      reward: scored.scores[0].R[k],
    })),
  );
  const o = adamwSettings(cfg, engine.updates);
  const r = yield* wait(engine.step(scored.seqs, scored.weights, o));
  if (!r.applied) return refused(r.loss, r.gradNorm);
  const old = scored.forward.logprobs;
  for (let u = 1; u < cfg.updatesPerBatch; u++) {
    const now = (yield* wait(engine.score(scored.seqs))).logprobs;
    const w = ratioWeights(scored, old, now);
    const ru = yield* wait(engine.step(scored.seqs, w, adamwSettings(cfg, engine.updates)));
    if (!ru.applied) return refused(ru.loss, ru.gradNorm, `loss of update ${u + 1}`);
  }
  const t3 = performance.now();
  const ntok = traces.flat().reduce((a, t) => a + t.tokens.length, 0) + scored.packed.length;
  return {
    loss: r.loss,
    ...metrics,
    ...(r.gradNorm !== null && { grad_norm: r.gradNorm }),
    lr: o.lr,
    "time/rollout_ms": t1 - t0,
    "time/score_ms": t2 - t1,
    "time/update_ms": t3 - t2,
    tokens_per_s: (ntok / (t3 - t0)) * 1000,
  };
}

/** One SFT step on prompt ⊕ ⟨answer_start⟩ ⊕ y*. */
function* sftStep(
  engine: Engine,
  batch: Example[],
  cfg: TrainConfig,
  answerStartId: number,
): Generator<Pending, Metrics | string, unknown> {
  const t0 = performance.now();
  const b = packSft(batch, answerStartId);
  const o = adamwSettings(cfg, engine.updates);
  const r = yield* wait(engine.step(b.seqs, b.weights, o));
  if (!r.applied) return refused(r.loss, r.gradNorm);
  const t1 = performance.now();
  return {
    loss: r.loss,
    ...(r.gradNorm !== null && { grad_norm: r.gradNorm }),
    lr: o.lr,
    "time/update_ms": t1 - t0,
    tokens_per_s: (b.packed.length / (t1 - t0)) * 1000,
  };
}

export { TIMING as isTimingKey };
