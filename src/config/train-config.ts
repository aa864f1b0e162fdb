import os from "node:os";
import { z } from "zod";
import { type Fields, field, type ValuesOf } from "./schema.js";

// no coercion: a config file's value must already have the type (YAML `steps: [7]`, `seed: true` and
// `group_size: "0x10"` are refused); flag values, always strings, are read as numbers or booleans by resolveFields
const int = (min: number) => z.number().int().min(min);
const num = () => z.number().finite();
const bool = () => z.boolean();

export const METHODS = ["nrt-ws", "nrt-gm", "rlpr", "verifree", "jlb", "sft"] as const;
export const AGGREGATIONS = ["logp", "prob", "gm", "am", "ws_inv", "ws_nlog"] as const;
export const BASELINES = ["none", "clip"] as const;
export const ADVANTAGES = ["group_std", "rloo", "loo_mean"] as const;
export const TOKEN_WEIGHTS = ["fixed", "derived", "reward", "none"] as const;
export const ENGINES = ["native", "tinker", "openai-split"] as const;
export const SAMPLERS = ["vllm", "sglang"] as const;
export const LEARNERS = ["native", "tinker"] as const;

/** Every setting of `nrt train`: the config file (snake_case), the CLI flags (kebab-case) and `--help` come from here. */
export const trainFields = {
  model: field(z.string().min(1), undefined, "model directory (or a run directory: its final model)"),
  data: field(z.string().min(1), undefined, "training data, JSON Lines of {question, answer} or {messages}"),
  out: field(z.string().min(1), undefined, "run directory to write", "-o"),
  method: field(z.enum(METHODS), "nrt-ws", "preset of SPEC §5; the four settings below override it"),
  aggregation: field(z.enum(AGGREGATIONS).optional(), undefined, "reward f(c): logp|prob|gm|am|ws_inv|ws_nlog"),
  baseline: field(z.enum(BASELINES).optional(), undefined, "reward baseline: none|clip"),
  advantage: field(z.enum(ADVANTAGES).optional(), undefined, "advantage over the group: group_std|rloo|loo_mean"),
  tokenWeight: field(z.enum(TOKEN_WEIGHTS).optional(), undefined, "answer-token weight: fixed|derived|reward|none"),
  formatCoef: field(num().min(0), 0.3, "λ_fmt, weight of the format term on ⟨answer_start⟩"),
  groupSize: field(int(1), 8, "K, traces sampled per question"),
  promptsPerStep: field(int(1), 8, "G, questions per step"),
  steps: field(int(1), 200, "optimiser steps"),
  updatesPerBatch: field(int(1), 1, "updates per rollout batch (>1 uses the clipped ratio of SPEC §4)"),
  temperature: field(num().min(0), 1, "sampling temperature of the traces"),
  topP: field(num().gt(0).max(1), 1, "nucleus sampling of the traces (1: off)"),
  topK: field(int(0), 0, "top-k sampling of the traces (0: off)"),
  maxTraceTokens: field(int(0), 64, "trace limit; a longer trace is cut and counted as truncated"),
  lr: field(num().gt(0), 3e-4, "peak learning rate"),
  schedule: field(z.enum(["constant", "cosine"]), "constant", "learning-rate schedule after warm-up"),
  warmupSteps: field(int(0), 0, "linear warm-up steps"),
  minLrRatio: field(num().min(0).max(1), 0.1, "final lr / peak lr for the cosine schedule"),
  weightDecay: field(num().min(0), 0, "AdamW weight decay (matrices only)"),
  beta1: field(num().min(0).lt(1), 0.9, "AdamW β1"),
  beta2: field(num().min(0).lt(1), 0.95, "AdamW β2"),
  adamEps: field(num().gt(0), 1e-8, "AdamW ε"),
  clip: field(num().min(0), 1, "global gradient-norm clip (0: off)"),
  seed: field(int(0), 0, "seed of data order and sampling"),
  threads: field(int(1), Math.max(1, os.availableParallelism()), "compute threads"),
  checkpointEvery: field(int(1), 50, "write a checkpoint every N steps (and at the end)"),
  keepCheckpoints: field(int(1), 2, "checkpoints kept on disk"),
  onNan: field(z.enum(["stop", "skip"]), "stop", "on a non-finite loss, gradient or reward: stop, or skip the batch"),
  skipInvalid: field(bool(), false, "turn invalid data records into counted warnings"),
  progress: field(bool(), true, "live progress display on stderr"),
  samplesEvery: field(int(1), 10, "write two sampled traces with their rewards to samples.jsonl every N steps"),
  saveDtype: field(
    z.enum(["auto", "float32", "bfloat16", "float16"]),
    "auto",
    "dtype of final/'s weights: auto keeps the input model's (training is float32 inside; checkpoints stay float32 for exact resume)",
  ),
  maxShardSize: field(
    z.string().regex(/^\s*\d+(\.\d+)?\s*([KMGT]i?B|B)?\s*$/i, "a size such as 5GB, 500MB or a number of bytes"),
    "5GB",
    "final/'s weights are split into shards of at most this size (model.safetensors.index.json), as save_pretrained does",
  ),
  termGradNorms: field(
    bool(),
    false,
    "on the steps that write samples, also log each SPEC §4 term's gradient norm (grad_norm/{trace,answer,format}; native engine, one forward+backward per term)",
  ),
  engine: field(
    z.enum(ENGINES),
    "native",
    "who samples, scores and trains: native (in process), tinker, or openai-split (vLLM/SGLang samples; docs/scale.md)",
  ),
  engineUrl: field(
    z.string(),
    "",
    "the Tinker server's base URL (--engine tinker, or --learner tinker), e.g. http://127.0.0.1:8000",
  ),
  engineModel: field(
    z.string(),
    "",
    "the server's base model name (default: its only one); --model gives the tokenizer",
  ),
  engineLoraRank: field(int(0), 0, "0: full fine-tuning (SkyRL); > 0: a LoRA adapter of this rank (hosted Tinker)"),
  engineTimeout: field(num().gt(0), 120, "seconds an engine request may take before it is retried"),
  engineRetries: field(int(0), 4, "retries of a failed engine request (exponential back-off from 0.5 s)"),
  engineChunkTokens: field(int(2), 65536, "most tokens per forward/forward_backward request; larger batches are split"),
  sampler: field(z.enum(SAMPLERS), "vllm", "--engine openai-split: the sampling server's protocol, vllm or sglang"),
  samplerUrl: field(
    z.string(),
    "",
    "--engine openai-split: the sampling server's base URL, e.g. http://127.0.0.1:8001",
  ),
  samplerModel: field(z.string(), "", "--engine openai-split, vllm: the served model name (default: its only one)"),
  samplerDir: field(
    z.string(),
    "",
    "--engine openai-split: the model directory the server loads; nrt rewrites it after each update",
  ),
  samplerReload: field(
    z.string(),
    "auto",
    "how the server reloads samplerDir: auto (vllm: /collective_rpc reload_weights; sglang: /update_weights_from_disk), none, or a POST path",
  ),
  samplerScores: field(bool(), false, "--engine openai-split: score (rewards, π_old) on the sampling server too"),
  learner: field(z.enum(LEARNERS), "native", "--engine openai-split: who trains, native (in process) or tinker"),
} satisfies Fields;

export type TrainConfig = ValuesOf<typeof trainFields>;
