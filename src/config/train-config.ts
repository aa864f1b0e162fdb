import os from "node:os";
import { z } from "zod";
import { advantages } from "../nrt/advantages.js";
import { aggregations } from "../nrt/aggregations.js";
import { baselines } from "../nrt/baselines.js";
import { methods } from "../nrt/methods.js";
import { tokenWeights } from "../nrt/token-weights.js";
import { type Field, field, type ValuesOf, type VerlFact } from "./schema.js";

// no coercion: a config file's value must already have the type (YAML `steps: [7]`, `seed: true` and
// `group_size: "0x10"` are refused); flag values, always strings, are read as numbers or booleans by resolveFields
const int = (min: number) => z.number().int().min(min);
const num = () => z.number().finite();
const bool = () => z.boolean();

/** The names of a table of src/nrt, in its order, as z.enum takes them. */
const names = <N extends string>(table: Readonly<Record<N, unknown>>) => Object.keys(table) as [N, ...N[]];

export const METHODS = names(methods);
export const AGGREGATIONS = names(aggregations);
export const BASELINES = names(baselines);
export const ADVANTAGES = names(advantages);
export const TOKEN_WEIGHTS = names(tokenWeights);
export const ENGINES = ["native", "tinker", "openai-split"] as const;
export const SAMPLERS = ["vllm", "sglang"] as const;
export const LEARNERS = ["native", "tinker"] as const;

/** Every setting of `nrt train`: the config file (snake_case), the CLI flags (kebab-case) and `--help` come from here. */
export const trainFields = {
  model: field(z.string().min(1), undefined, "model directory (or a run directory: its final model)", {
    verl: { keys: "model/ (the export writes the model there, with <|response_start|>)" },
  }),
  data: field(z.string().min(1), undefined, "training data, JSON Lines of {question, answer} or {messages}", {
    verl: { keys: "train.parquet" },
  }),
  out: field(z.string().min(1), undefined, "run directory to write", {
    alias: "-o",
    resumable: true,
    verl: { none: "the run directory: verl writes checkpoints under trainer.default_local_dir" },
  }),
  method: field(z.enum(METHODS), "nrt-ws", "preset of SPEC §5; the four settings below override it", {
    verl: { keys: "the NRT loss keys below, through its preset" },
  }),
  aggregation: field(z.enum(AGGREGATIONS).optional(), undefined, "reward f(c): logp|prob|gm|am|ws_inv|ws_nlog", {
    verl: { keys: "algorithm.reward_agg_mode" },
  }),
  baseline: field(z.enum(BASELINES).optional(), undefined, "reward baseline: none|clip", {
    verl: { none: "the recipe has no reward baseline (its use_clipped_reward is commented out): R is used as it is" },
  }),
  advantage: field(z.enum(ADVANTAGES).optional(), undefined, "advantage over the group: group_std|rloo|loo_mean", {
    verl: { keys: "algorithm.center_reward_by, scale_reward_by; actor.trace_loss_coef" },
  }),
  tokenWeight: field(z.enum(TOKEN_WEIGHTS).optional(), undefined, "answer-token weight: fixed|derived|reward|none", {
    verl: { keys: "actor.token_loss_coef, algorithm.use_fixed_token_reward" },
  }),
  formatCoef: field(num().min(0), 0.3, "λ_fmt, weight of the format term on ⟨answer_start⟩", {
    verl: { keys: "actor.response_prefix_loss_coef" },
  }),
  groupSize: field(int(1), 8, "K, traces sampled per question", { verl: { keys: "actor_rollout_ref.rollout.n" } }),
  promptsPerStep: field(int(1), 8, "G, questions per step", {
    verl: { keys: "data.train_batch_size, actor.ppo_mini_batch_size" },
  }),
  steps: field(int(1), 200, "optimiser steps", {
    resumable: true,
    verl: { keys: "trainer.total_training_steps, trainer.total_epochs" },
  }),
  updatesPerBatch: field(int(1), 1, "updates per rollout batch (>1 uses the clipped ratio of SPEC §4)", {
    verl: { keys: "actor.ppo_epochs" },
  }),
  temperature: field(num().min(0), 1, "sampling temperature of the traces", {
    verl: { keys: "actor_rollout_ref.rollout.temperature" },
  }),
  topP: field(num().gt(0).max(1), 1, "nucleus sampling of the traces (1: off)", {
    verl: { keys: "actor_rollout_ref.rollout.top_p" },
  }),
  topK: field(int(0), 0, "top-k sampling of the traces (0: off)", {
    verl: { keys: "actor_rollout_ref.rollout.top_k" },
  }),
  maxTraceTokens: field(int(0), 64, "trace limit; a longer trace is cut and counted as truncated", {
    verl: { keys: "data.max_think_length, data.max_response_length" },
  }),
  lr: field(num().gt(0), 3e-4, "peak learning rate", { verl: { keys: "actor.optim.lr" } }),
  schedule: field(z.enum(["constant", "cosine"]), "constant", "learning-rate schedule after warm-up", {
    verl: { keys: "actor.optim.lr_scheduler_type" },
  }),
  warmupSteps: field(int(0), 0, "linear warm-up steps", { verl: { keys: "actor.optim.lr_warmup_steps" } }),
  minLrRatio: field(num().min(0).max(1), 0.1, "final lr / peak lr for the cosine schedule", {
    verl: { keys: "actor.optim.min_lr_ratio" },
  }),
  weightDecay: field(num().min(0), 0, "AdamW weight decay (matrices only)", {
    verl: { keys: "actor.optim.weight_decay" },
  }),
  beta1: field(num().min(0).lt(1), 0.9, "AdamW β1", { verl: { keys: "actor.optim.betas" } }),
  beta2: field(num().min(0).lt(1), 0.95, "AdamW β2", { verl: { keys: "actor.optim.betas" } }),
  adamEps: field(num().gt(0), 1e-8, "AdamW ε", { verl: { keys: "actor.optim.eps" } }),
  clip: field(num().min(0), 1, "global gradient-norm clip (0: off)", { verl: { keys: "actor.grad_clip" } }),
  seed: field(int(0), 0, "seed of data order and sampling", { verl: { keys: "data.seed" } }),
  threads: field(int(1), Math.max(1, os.availableParallelism()), "compute threads", {
    resumable: true,
    verl: { none: "CPU threads; the machine is set in run.sh (MLP_WORKER_GPU, MLP_WORKER_NUM)" },
  }),
  checkpointEvery: field(int(1), 50, "write a checkpoint every N steps (and at the end)", {
    verl: { keys: "trainer.save_freq, trainer.test_freq" },
  }),
  keepCheckpoints: field(int(1), 2, "checkpoints kept on disk", { verl: { keys: "trainer.max_actor_ckpt_to_keep" } }),
  onNan: field(z.enum(["stop", "skip"]), "stop", "on a non-finite loss, gradient or reward: stop, or skip the batch", {
    resumable: true,
    verl: { none: "the recipe raises on a non-finite reward (nrt_ray_trainer: 'trace_reward is nan or inf')" },
  }),
  questionField: field(z.string().min(1), "question", "the data's question field (plain records)", {
    verl: { keys: "the export reads the data as nrt train does" },
  }),
  answerField: field(z.string().min(1), "answer", "the data's answer field (plain records)", {
    verl: { keys: "the export reads the data as nrt train does" },
  }),
  messagesField: field(z.string().min(1), "messages", "the data's chat-turns field (chat records)", {
    verl: { keys: "the export reads the data as nrt train does" },
  }),
  skipInvalid: field(bool(), false, "turn invalid data records into counted warnings", {
    verl: { keys: "the export reads the data as nrt train does" },
  }),
  progress: field(bool(), true, "live progress display on stderr", {
    resumable: true,
    verl: { none: "nrt's terminal display" },
  }),
  samplesEvery: field(int(1), 10, "write two sampled traces with their rewards to samples.jsonl every N steps", {
    resumable: true,
    verl: { none: "nrt's samples.jsonl; verl logs rollouts with trainer.rollout_data_dir" },
  }),
  saveDtype: field(
    z.enum(["auto", "float32", "bfloat16", "float16"]),
    "auto",
    "dtype of final/'s weights: auto keeps the input model's (training is float32 inside; checkpoints stay float32 for exact resume)",
    { resumable: true, verl: { none: "the dtype of nrt's final/; verl saves its checkpoints as FSDP does" } },
  ),
  maxShardSize: field(
    z.string().regex(/^\s*\d+(\.\d+)?\s*([KMGT]i?B|B)?\s*$/i, "a size such as 5GB, 500MB or a number of bytes"),
    "5GB",
    "final/'s weights are split into shards of at most this size (model.safetensors.index.json), as save_pretrained does",
    { resumable: true, verl: { none: "the shard size of nrt's final/; verl saves its checkpoints as FSDP does" } },
  ),
  loraRank: field(
    int(0),
    0,
    "LoRA rank R (0: full fine-tuning): the base is frozen and checkpoints hold a PEFT adapter",
    {
      verl: {
        none: "nrt's LoRA; the export keeps verl's full fine-tuning (its actor_rollout_ref.model.lora_rank is not set)",
      },
    },
  ),
  loraAlpha: field(
    num().gt(0).optional(),
    undefined,
    "LoRA alpha (default 2R): the adapter's delta is scaled by alpha / R",
    {
      verl: { with: "loraRank" },
    },
  ),
  loraTargets: field(
    z.string().regex(/^\s*[a-z_]+(\s*,\s*[a-z_]+)*\s*$/, "a comma-separated list such as q_proj,v_proj"),
    "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
    "the projections LoRA adapts (PEFT's target_modules)",
    { verl: { with: "loraRank" } },
  ),
  microBatchTokens: field(
    int(0),
    0,
    "most tokens per forward/backward chunk, gradients accumulated over the chunks (0: auto, chunks only when a step's activations would pass 4 GB)",
    {
      resumable: true,
      verl: { none: "nrt's activation bound; verl's is actor.ppo_max_token_len_per_gpu with use_dynamic_bsz" },
    },
  ),
  termGradNorms: field(
    bool(),
    false,
    "on the steps that write samples, also log each SPEC §4 term's gradient norm (grad_norm/{trace,answer,format}; native engine, one forward+backward per term)",
    { verl: { none: "nrt's per-term gradient-norm diagnostics" } },
  ),
  engine: field(
    z.enum(ENGINES),
    "native",
    "who samples, scores and trains: native (in process), tinker, or openai-split (vLLM/SGLang samples; docs/scale.md)",
    {
      verl: {
        none: "nrt's engines (and their engine_*, sampler_*, learner settings); the recipe samples with vLLM and trains with FSDP",
      },
    },
  ),
  engineUrl: field(
    z.string(),
    "",
    "the Tinker server's base URL (--engine tinker, or --learner tinker), e.g. http://127.0.0.1:8000",
    { resumable: true, verl: { with: "engine" } },
  ),
  engineModel: field(
    z.string(),
    "",
    "the server's base model name (default: its only one); --model gives the tokenizer",
    { verl: { with: "engine" } },
  ),
  engineLoraRank: field(int(0), 0, "0: full fine-tuning (SkyRL); > 0: a LoRA adapter of this rank (hosted Tinker)", {
    verl: { with: "engine" },
  }),
  engineTimeout: field(num().gt(0), 120, "seconds an engine request may take before it is retried", {
    resumable: true,
    verl: { with: "engine" },
  }),
  engineRetries: field(int(0), 4, "retries of a failed engine request (exponential back-off from 0.5 s)", {
    resumable: true,
    verl: { with: "engine" },
  }),
  engineChunkTokens: field(
    int(2),
    65536,
    "most tokens per forward/forward_backward request; larger batches are split",
    { verl: { with: "engine" } },
  ),
  sampler: field(z.enum(SAMPLERS), "vllm", "--engine openai-split: the sampling server's protocol, vllm or sglang", {
    verl: { with: "engine" },
  }),
  samplerUrl: field(
    z.string(),
    "",
    "--engine openai-split: the sampling server's base URL, e.g. http://127.0.0.1:8001",
    { resumable: true, verl: { with: "engine" } },
  ),
  samplerModel: field(z.string(), "", "--engine openai-split, vllm: the served model name (default: its only one)", {
    resumable: true,
    verl: { with: "engine" },
  }),
  samplerDir: field(
    z.string(),
    "",
    "--engine openai-split: the model directory the server loads; nrt rewrites it after each update",
    { resumable: true, verl: { with: "engine" } },
  ),
  samplerReload: field(
    z.string(),
    "auto",
    "how the server reloads samplerDir: auto (vllm: /collective_rpc reload_weights; sglang: /update_weights_from_disk), none, or a POST path",
    { resumable: true, verl: { with: "engine" } },
  ),
  samplerScores: field(bool(), false, "--engine openai-split: score (rewards, π_old) on the sampling server too", {
    verl: { with: "engine" },
  }),
  learner: field(z.enum(LEARNERS), "native", "--engine openai-split: who trains, native (in process) or tinker", {
    verl: { with: "engine" },
  }),
} satisfies Record<string, Field & { verl: VerlFact }>;

export type TrainConfig = ValuesOf<typeof trainFields>;
