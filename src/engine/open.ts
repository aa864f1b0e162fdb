/**
 * The engine a training configuration asks for, opened (and, for a resumed run, restored from its checkpoint), and
 * the AdamW settings it is given for each update.
 */
import { resolve } from "node:path";
import type { TrainConfig } from "../config/train-config.js";
import { NrtError } from "../errors.js";
import type { Model } from "../model/model.js";
import { loadOptimizer, type TrainerState } from "../train/checkpoint.js";
import { lrAt } from "../train/schedule.js";
import type { Engine, MaybePromise, OptimStep } from "./engine.js";
import { NativeEngine } from "./native.js";
import { SglangSampler } from "./sglang.js";
import { openSplit } from "./split.js";
import { openTinker } from "./tinker.js";
import { VllmSampler } from "./vllm.js";

/** The checkpoint a resumed run continues from (null for a new run). */
type Resumed = { dir: string; state: TrainerState & { adamStep: number } } | null;

/**
 * `model` is the local model (its weights are a checkpoint's on resume); `ckpt` the checkpoint resumed from; `probe`
 * a short sequence a remote engine scores on both sides to check that the server holds this model; `files` what a
 * model directory carries besides the weights (the tokenizer), for the directory the split engine's server loads.
 */
export function openEngine(
  cfg: TrainConfig,
  model: Model,
  ckpt: Resumed,
  probe?: readonly number[],
  files: Readonly<Record<string, string | Uint8Array>> = {},
): MaybePromise<Engine> {
  if (cfg.engine === "native") return openNative(model, ckpt);
  if (cfg.engine === "tinker") return openTinkerOf(cfg, model, ckpt, probe);
  return openSplitOf(cfg, model, ckpt, probe, files);
}

function openNative(model: Model, ckpt: Resumed): Engine {
  if (!ckpt) return new NativeEngine(model);
  const opt = { m: model.zeros(), v: model.zeros(), step: 0 };
  loadOptimizer(ckpt.dir, opt, ckpt.state.adamStep);
  return new NativeEngine(model, opt);
}

function openTinkerOf(cfg: TrainConfig, model: Model, ckpt: Resumed, probe?: readonly number[]): Promise<Engine> {
  const flag = cfg.engine === "tinker" ? "--engine tinker" : "--learner tinker";
  if (!cfg.engineUrl) throw new NrtError(`${flag} needs --engine-url (the Tinker server's base URL)`);
  const remote = ckpt?.state.extra.engine as { state_path?: unknown; base_model?: unknown } | undefined;
  if (ckpt && typeof remote?.state_path !== "string")
    throw new NrtError("the checkpoint holds no tinker engine state (written by another engine?)", ckpt.dir);
  return openTinker(model, {
    url: cfg.engineUrl,
    baseModel: cfg.engineModel || (typeof remote?.base_model === "string" ? remote.base_model : ""),
    loraRank: cfg.engineLoraRank,
    timeoutMs: cfg.engineTimeout * 1000,
    retries: cfg.engineRetries,
    backoffMs: 500,
    chunkTokens: cfg.engineChunkTokens,
    concurrency: 64,
    resume: ckpt ? { statePath: remote?.state_path as string, updates: ckpt.state.adamStep } : undefined,
    probe,
  });
}

async function openSplitOf(
  cfg: TrainConfig,
  model: Model,
  ckpt: Resumed,
  probe: readonly number[] | undefined,
  files: Readonly<Record<string, string | Uint8Array>>,
): Promise<Engine> {
  if (!cfg.samplerUrl) throw new NrtError("--engine openai-split needs --sampler-url (the vLLM or SGLang server)");
  if (!cfg.samplerDir)
    throw new NrtError("--engine openai-split needs --sampler-dir (the model directory the server loads)");
  if (samePath(cfg.samplerDir, cfg.model) || samePath(cfg.samplerDir, cfg.out))
    throw new NrtError(
      "nrt rewrites this directory after every update: give a copy, not the starting model or the run directory",
      "--sampler-dir",
    );
  const o = {
    url: cfg.samplerUrl,
    timeoutMs: cfg.engineTimeout * 1000,
    retries: cfg.engineRetries,
    backoffMs: 500,
    concurrency: 64,
    chunkTokens: cfg.engineChunkTokens,
    servedModel: cfg.samplerModel,
    reload: cfg.samplerReload,
  };
  const sampler = cfg.sampler === "vllm" ? new VllmSampler(o) : new SglangSampler(o);
  const learner = cfg.learner === "native" ? openNative(model, ckpt) : await openTinkerOf(cfg, model, ckpt, probe);
  return openSplit(learner, model, sampler, {
    dir: cfg.samplerDir,
    files,
    scoreOnSampler: cfg.samplerScores,
    probe,
  });
}

const samePath = (a: string, b: string): boolean => resolve(a) === resolve(b);

/** The AdamW settings of the engine's next update: the schedule's lr at step updates + 1. */
export function optimStepOf(cfg: TrainConfig, updates: number): OptimStep {
  const schedule = {
    lr: cfg.lr,
    warmupSteps: cfg.warmupSteps,
    totalSteps: cfg.steps,
    kind: cfg.schedule,
    minRatio: cfg.minLrRatio,
  };
  return {
    lr: lrAt(schedule, updates + 1),
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.adamEps,
    weightDecay: cfg.weightDecay,
    clip: cfg.clip,
  };
}
