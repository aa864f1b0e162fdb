/**
 * The engine a training configuration asks for, opened (and, for a resumed run, restored from its checkpoint), and
 * the AdamW settings it is given for each update.
 */
import type { TrainConfig } from "../config/train-config.js";
import { NrtError } from "../errors.js";
import type { Model } from "../model/model.js";
import { loadOptimizer, type TrainerState } from "../train/checkpoint.js";
import { lrAt } from "../train/schedule.js";
import type { Engine, MaybePromise, OptimStep } from "./engine.js";
import { NativeEngine } from "./native.js";
import { openTinker } from "./tinker.js";

/**
 * `model` is the local model (its weights are a checkpoint's on resume); `ckpt` the checkpoint resumed from; `probe`
 * a short sequence a remote engine scores on both sides to check that the server holds this model.
 */
export function openEngine(
  cfg: TrainConfig,
  model: Model,
  ckpt: { dir: string; state: TrainerState & { adamStep: number } } | null,
  probe?: readonly number[],
): MaybePromise<Engine> {
  if (cfg.engine === "native") {
    if (!ckpt) return new NativeEngine(model);
    const opt = { m: model.zeros(), v: model.zeros(), step: 0 };
    loadOptimizer(ckpt.dir, opt, ckpt.state.adamStep);
    return new NativeEngine(model, opt);
  }
  if (!cfg.engineUrl) throw new NrtError(`--engine ${cfg.engine} needs --engine-url (the server's base URL)`);
  const remote = ckpt?.state.extra.engine as { state_path?: unknown; base_model?: unknown } | undefined;
  if (ckpt && typeof remote?.state_path !== "string")
    throw new NrtError(`the checkpoint holds no ${cfg.engine} engine state (written by another engine?)`, ckpt.dir);
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
