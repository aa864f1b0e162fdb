/**
 * The engine a training configuration asks for, opened (and, for a resumed run, given the state its checkpoint kept).
 * Reading checkpoints and the learning-rate schedule are the trainer's (src/train/); this file only hands them on.
 */
import { resolve } from "node:path";
import type { TrainConfig } from "../config/train-config.js";
import { NrtError } from "../errors.js";
import type { Model } from "../model/model.js";
import type { AdamWState } from "../model/native.js";
import type { Engine, MaybePromise } from "./engine.js";
import { NativeEngine } from "./native.js";
import { SglangSampler } from "./sglang.js";
import { openSplit } from "./split.js";
import { openTinker } from "./tinker.js";
import { VllmSampler } from "./vllm.js";

/** What a resumed run hands the engine it opens: the updates already applied and the state its checkpoint kept. */
export interface EngineResume {
  /** the checkpoint's directory (named in errors) */
  dir: string;
  /** updates applied before the checkpoint (AdamW's step) */
  updates: number;
  /** the in-process AdamW moments, read from the checkpoint when the native engine asks for them */
  optimizer(): AdamWState;
  /** what the engine's `saveState` returned as `remote` (e.g. a Tinker state path), if anything */
  remote: Record<string, unknown> | undefined;
}

type Resumed = EngineResume | null;

/**
 * `model` is the local model (its weights are a checkpoint's on resume); `ckpt` what the run resumes from; `probe`
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
  if (cfg.engine === "native") return openNative(model, ckpt, cfg.microBatchTokens);
  if (cfg.engine === "tinker") return openTinkerOf(cfg, model, ckpt, probe);
  return openSplitOf(cfg, model, ckpt, probe, files);
}

function openNative(model: Model, ckpt: Resumed, microBatchTokens: number): Engine {
  return new NativeEngine(model, ckpt?.optimizer(), microBatchTokens);
}

function openTinkerOf(cfg: TrainConfig, model: Model, ckpt: Resumed, probe?: readonly number[]): Promise<Engine> {
  const flag = cfg.engine === "tinker" ? "--engine tinker" : "--learner tinker";
  if (!cfg.engineUrl) throw new NrtError(`${flag} needs --engine-url (the Tinker server's base URL)`);
  const remote = ckpt?.remote as { state_path?: unknown; base_model?: unknown } | undefined;
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
    resume: ckpt ? { statePath: remote?.state_path as string, updates: ckpt.updates } : undefined,
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
  const learner =
    cfg.learner === "native"
      ? openNative(model, ckpt, cfg.microBatchTokens)
      : await openTinkerOf(cfg, model, ckpt, probe);
  return openSplit(learner, model, sampler, {
    dir: cfg.samplerDir,
    files,
    scoreOnSampler: cfg.samplerScores,
    probe,
  });
}

const samePath = (a: string, b: string): boolean => resolve(a) === resolve(b);
