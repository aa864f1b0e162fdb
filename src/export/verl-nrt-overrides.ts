/**
 * nrt's `nrt train` settings as Hydra overrides of recipe/nrt (`python3 -m recipe.nrt.main_nrt`). Every key below
 * exists in the recipe's configuration: `recipe/nrt/config/nrt_trainer.yaml` (NRT keys: `data.max_think_length`,
 * `actor.use_nrt_loss`, `*_loss_coef`, `cispo_clip_ratio_*`, `algorithm.reward_agg_mode`, `center_reward_by`,
 * `scale_reward_by`, `use_fixed_token_reward`, `response_format`) over verl's `ppo_trainer.yaml`
 * (`verl/trainer/config/_generated_ppo_trainer.yaml` lists it flat), as `recipe/nrt/run_example_log_prob.sh` sets
 * them. Where the recipe computes something differently, the override says so in its `note`; settings with no
 * counterpart are listed in `unmapped`.
 */
import { type TrainConfig, trainFields } from "../config/train-config.js";
import { NrtError } from "../errors.js";
import type { AdvantageName } from "../nrt/advantages.js";
import type { AggregationName } from "../nrt/aggregations.js";
import { RATIO_HIGH, RATIO_LOW } from "../nrt/weights.js";
import { objectiveOf } from "../train/trainer.js";
import { snake } from "../util/case.js";

/** One Hydra override `key=value`, with the nrt setting it comes from. */
export interface Override {
  key: string;
  value: string;
  /** the nrt setting(s) or fact it comes from, e.g. `group_size = 8` */
  from: string;
  /** where the recipe does not compute exactly what nrt does with this setting */
  note?: string;
}

/** An nrt setting the recipe has no key for. */
export interface Unmapped {
  setting: string;
  value: unknown;
  why: string;
}

/** What the data decides: batch counts and the token lengths of the longest prompt and answer. */
export interface DataShape {
  trainRows: number;
  /** tokens of the longest rendered prompt, train and test */
  maxPromptTokens: number;
  /** tokens of the longest answer with its ⟨eos⟩, train and test */
  maxAnswerTokens: number;
  /** a test.parquet is written */
  hasEval: boolean;
  /** the model's max_position_embeddings */
  context: number;
}

export interface VerlNrtOverrides {
  overrides: Override[];
  unmapped: Unmapped[];
  warnings: string[];
}

/** nrt's aggregation f → the recipe's `algorithm.reward_agg_mode` (`nrt_ray_trainer._compute_nrt_rewards`). */
export const REWARD_AGG_MODE: Readonly<Record<AggregationName, string>> = {
  logp: "log_prob",
  prob: "prob",
  gm: "geometric_mean",
  am: "arithmetic_mean",
  ws_inv: "weighted_sum_inverse_prob",
  ws_nlog: "weighted_sum_log_prob",
};

const facts = Object.entries(trainFields).map(([k, f]) => [k, f.verl] as const);
/** Settings that set recipe keys below or that the export uses itself (their `verl.keys` in the schema). */
const CONSUMED = new Set(facts.flatMap(([k, v]) => ("keys" in v ? [k] : [])));
/** Why a setting has no counterpart (its `verl.none` in the schema). */
const NO_COUNTERPART: Readonly<Record<string, string>> = Object.fromEntries(
  facts.flatMap(([k, v]) => ("none" in v ? [[k, v.none]] : [])),
);
/** Settings listed with another one's entry (the engine's own settings, under `engine`). */
const LISTED_WITH = new Set(facts.flatMap(([k, v]) => ("with" in v ? [k] : [])));

const num = (x: number): string => (Number.isFinite(x) ? String(x) : x > 0 ? "inf" : "-inf");

/** The overrides for `cfg` on data of `shape`. A config that trains without traces (sft) has none: an error. */
export function verlNrtOverrides(cfg: TrainConfig, shape: DataShape): VerlNrtOverrides {
  const objective = objectiveOf(cfg);
  if (objective === null)
    throw new NrtError(
      "sft trains without traces; recipe/nrt always samples them (use verl's SFT trainer instead)",
      "method",
    );
  const o: Override[] = [];
  const warnings: string[] = [];
  const unmapped: Unmapped[] = [];
  const add = (key: string, value: string | number | boolean, from: string, note?: string) =>
    o.push({ key, value: typeof value === "number" ? num(value) : String(value), from, ...(note && { note }) });
  const K = cfg.groupSize;
  const G = cfg.promptsPerStep;
  const M = cfg.maxTraceTokens;

  // data: batch and lengths
  add("data.train_batch_size", G, `prompts_per_step = ${G}`);
  add("data.max_prompt_length", shape.maxPromptTokens, "the longest prompt of the data, in tokens");
  add("data.max_think_length", M, `max_trace_tokens = ${M}`);
  const response = M + 1 + shape.maxAnswerTokens;
  add(
    "data.max_response_length",
    response,
    `max_trace_tokens + ⟨answer_start⟩ + the longest answer with ⟨eos⟩ (${M} + 1 + ${shape.maxAnswerTokens})`,
    "vLLM generates up to this many tokens and the recipe cuts the trace so that trace + <|response_start|> + answer fit it: a trace before a shorter answer may run longer than max_trace_tokens",
  );
  add("data.seed", cfg.seed, `seed = ${cfg.seed}`, "seeds the data order only; verl's shuffle is not nrt's order");

  // sampling
  add("actor_rollout_ref.rollout.n", K, `group_size = ${K}`);
  add(
    "actor_rollout_ref.rollout.temperature",
    cfg.temperature,
    `temperature = ${cfg.temperature}`,
    cfg.temperature === 1
      ? undefined
      : "verl also divides the logits by the temperature when it scores, so the rewards use tempered probabilities (nrt's use the model's own)",
  );
  add("actor_rollout_ref.rollout.top_p", cfg.topP, `top_p = ${cfg.topP}`);
  add("actor_rollout_ref.rollout.top_k", cfg.topK === 0 ? -1 : cfg.topK, `top_k = ${cfg.topK} (off is -1 in verl)`);

  // the NRT loss
  const a = "actor_rollout_ref.actor";
  add(`${a}.ppo_mini_batch_size`, G, `prompts_per_step = ${G}: one update per rollout batch, as nrt`);
  add(`${a}.ppo_epochs`, cfg.updatesPerBatch, `updates_per_batch = ${cfg.updatesPerBatch}`);
  add(
    `${a}.loss_agg_mode`,
    "seq-mean-token-sum",
    "nrt's loss: token sums per sequence, averaged over the G·K sequences",
    "the recipe's example uses seq-mean-token-sum-norm; with seq-mean-token-sum the format term is averaged over the sequences that did not emit <|response_start|> in each micro-batch, nrt's over all G·K",
  );
  add(`${a}.use_nrt_loss`, true, "the NRT loss (trace, format and answer terms)");
  const loo = (["rloo", "loo_mean"] as AdvantageName[]).includes(objective.advantage);
  add(
    `${a}.trace_loss_coef`,
    loo ? K / (K - 1) : 1,
    loo ? `advantage = ${objective.advantage}: (R − mean)·K/(K − 1), the factor folded in here` : "trace term weight 1",
  );
  add(`${a}.response_prefix_loss_coef`, objective.formatCoef, `format_coef = ${objective.formatCoef} (λ_fmt)`);
  add(
    `${a}.token_loss_coef`,
    objective.tokenWeight === "none" ? 0 : 1,
    `token_weight = ${objective.tokenWeight}${objective.tokenWeight === "none" ? ": no answer term" : ""}`,
  );
  for (const [k, v] of [
    ["clip_ratio_low", RATIO_LOW],
    ["clip_ratio_high", RATIO_HIGH],
    ["cispo_clip_ratio_low", RATIO_LOW],
    ["cispo_clip_ratio_high", RATIO_HIGH],
  ] as const)
    add(`${a}.${k}`, v, `SPEC §4's clipped ratio (${RATIO_LOW}, ${RATIO_HIGH}), active when updates_per_batch > 1`);
  add(`${a}.use_kl_loss`, false, "nrt has no KL term");
  add(`${a}.kl_loss_coef`, 0, "nrt has no KL term");
  add(`${a}.entropy_coeff`, 0, "nrt has no entropy bonus");
  add(
    `${a}.grad_clip`,
    cfg.clip === 0 ? Number.POSITIVE_INFINITY : cfg.clip,
    `clip = ${cfg.clip}${cfg.clip === 0 ? " (off)" : ""}`,
  );

  // optimizer
  const opt = `${a}.optim`;
  add(`${opt}.lr`, cfg.lr, `lr = ${cfg.lr}`);
  add(`${opt}.lr_scheduler_type`, cfg.schedule, `schedule = ${cfg.schedule}`);
  add(
    `${opt}.lr_warmup_steps`,
    cfg.warmupSteps,
    `warmup_steps = ${cfg.warmupSteps}`,
    cfg.warmupSteps > 0
      ? "verl's scheduler counts steps from 0: its first step runs at lr 0 and the warm-up ends one step later than nrt's"
      : undefined,
  );
  if (cfg.schedule === "cosine") add(`${opt}.min_lr_ratio`, cfg.minLrRatio, `min_lr_ratio = ${cfg.minLrRatio}`);
  add(
    `${opt}.weight_decay`,
    cfg.weightDecay,
    `weight_decay = ${cfg.weightDecay}`,
    cfg.weightDecay === 0 ? undefined : "verl's AdamW decays every parameter; nrt decays the matrices only",
  );
  add(`${opt}.betas`, `[${num(cfg.beta1)},${num(cfg.beta2)}]`, `beta1 = ${cfg.beta1}, beta2 = ${cfg.beta2}`);
  add(`${opt}.eps`, cfg.adamEps, `adam_eps = ${cfg.adamEps}`);

  // rewards and advantages
  add("algorithm.adv_estimator", "grpo", "no critic (the NRT trainer computes its own rewards)");
  add("algorithm.use_kl_in_reward", false, "nrt has no KL term");
  add("algorithm.response_format", "default", "trace ⊕ <|response_start|> ⊕ answer");
  add("algorithm.reward_agg_mode", REWARD_AGG_MODE[objective.aggregation], `aggregation = ${objective.aggregation}`);
  add("algorithm.center_reward_by", "mean", `advantage = ${objective.advantage}: centred by the group's mean`);
  add(
    "algorithm.scale_reward_by",
    objective.advantage === "group_std" ? "std" : "null",
    objective.advantage === "group_std"
      ? "advantage = group_std: divided by the group's unbiased std"
      : `advantage = ${objective.advantage}: not scaled`,
    objective.advantage === "group_std"
      ? "a group whose std is exactly 0 gets A = 0; nrt's threshold is 1e-12"
      : undefined,
  );
  const fixed = objective.tokenWeight === "fixed" || objective.tokenWeight === "none";
  add(
    "algorithm.use_fixed_token_reward",
    fixed,
    `token_weight = ${objective.tokenWeight}`,
    fixed
      ? undefined
      : objective.tokenWeight === "reward" && objective.aggregation !== "prob"
        ? "the recipe's token reward is c·∂f/∂c (nrt's `derived`), then centred and scaled like the trace reward; nrt's `reward` is R itself: not the same"
        : "the recipe's token reward (c·∂f/∂c, for prob: R) is centred and scaled over the group like the trace reward; nrt's s is used as it is",
  );
  add("custom_reward_function.path", "recipe/nrt/reward_score.py", "the recipe's (constant) score function");
  add("custom_reward_function.name", "compute_score", "as run_example_log_prob.sh");
  add("reward_model.reward_manager", "naive", "as run_example_log_prob.sh");

  // schedule of the run
  const perEpoch = Math.floor(shape.trainRows / G);
  add("trainer.total_training_steps", cfg.steps, `steps = ${cfg.steps}`);
  add(
    "trainer.total_epochs",
    Math.max(1, Math.ceil(cfg.steps / Math.max(1, perEpoch))),
    `enough passes for ${cfg.steps} steps of ${G} questions over ${shape.trainRows} records`,
  );
  add("trainer.save_freq", cfg.checkpointEvery, `checkpoint_every = ${cfg.checkpointEvery}`);
  add("trainer.max_actor_ckpt_to_keep", cfg.keepCheckpoints, `keep_checkpoints = ${cfg.keepCheckpoints}`);
  add("trainer.val_before_train", false, "nrt does not evaluate before training");
  add(
    "trainer.test_freq",
    shape.hasEval ? cfg.checkpointEvery : -1,
    shape.hasEval ? "validate on test.parquet at every checkpoint" : "no eval data: no validation",
  );

  // the objective's baseline (a method's preset or the setting): only one other than none has no counterpart
  if (objective.baseline !== "none")
    unmapped.push({ setting: "baseline", value: objective.baseline, why: NO_COUNTERPART.baseline });
  for (const [k, v] of Object.entries(cfg)) {
    if (CONSUMED.has(k) || k === "baseline" || v === undefined || LISTED_WITH.has(k)) continue;
    unmapped.push({ setting: snake(k), value: v, why: NO_COUNTERPART[k] ?? "no counterpart in recipe/nrt" });
  }

  if (perEpoch === 0)
    warnings.push(
      `the training data has ${shape.trainRows} record(s), fewer than prompts_per_step (${G}): verl drops the incomplete batch and has no step to take`,
    );
  if (shape.maxPromptTokens + response > shape.context)
    warnings.push(
      `data.max_prompt_length + data.max_response_length = ${shape.maxPromptTokens + response} exceeds the model's context (${shape.context}); vLLM refuses a max_model_len past it`,
    );
  if (objective.baseline !== "none")
    warnings.push(`baseline = ${objective.baseline} has no counterpart in recipe/nrt: the export runs without it`);
  return { overrides: o, unmapped, warnings };
}

/** overrides.txt: a header, then for each override its source as a comment line and `key=value`. */
export function overridesText(r: VerlNrtOverrides, header: readonly string[]): string {
  const lines = header.map((h) => `# ${h}`);
  for (const x of r.overrides) {
    lines.push("", `# ${x.from}${x.note ? `. Not exact: ${x.note}` : ""}`, `${x.key}=${x.value}`);
  }
  if (r.unmapped.length > 0) {
    lines.push("", "# nrt settings with no counterpart in recipe/nrt:");
    for (const u of r.unmapped) lines.push(`#   ${u.setting} = ${JSON.stringify(u.value)}: ${u.why}`);
  }
  return `${lines.join("\n")}\n`;
}
