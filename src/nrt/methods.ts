import { NrtError } from "../errors.js";
import { type AdvantageName, advantages } from "./advantages.js";
import { type AggregationName, aggregations } from "./aggregations.js";
import { type BaselineName, baselines } from "./baselines.js";
import { type TokenWeightName, tokenWeights } from "./token-weights.js";

/** The NRT objective of one training run or `nrt grad` batch: which f, baseline, advantage and s (SPEC §3–4). */
export interface NrtObjective {
  aggregation: AggregationName;
  baseline: BaselineName;
  advantage: AdvantageName;
  tokenWeight: TokenWeightName;
  /** λ_fmt, the weight of the format term −λ_fmt · [not emitted_k] · log π(⟨answer_start⟩ | x, z_k) */
  formatCoef: number;
}

/** SPEC §4 defaults: `ws_nlog`, `none`, `group_std`, `fixed`, λ_fmt = 0.3. */
export const defaultObjective: Readonly<NrtObjective> = Object.freeze({
  aggregation: "ws_nlog",
  baseline: "none",
  advantage: "group_std",
  tokenWeight: "fixed",
  formatCoef: 0.3,
});

/** A partial objective from an untyped source (JSON, flags): any key may be missing; values are checked. */
export type ObjectiveInput = { readonly [K in keyof NrtObjective]?: unknown };

export type MethodName = "nrt-ws" | "nrt-gm" | "rlpr" | "verifree" | "jlb" | "sft";

/** The choice of table entries a method fixes (λ_fmt is left to the objective's default or the user). */
export type ObjectiveChoice = Readonly<Omit<NrtObjective, "formatCoef">>;

/**
 * A method of SPEC §5. `sft: true`: no traces; minimise −log π(⟨answer_start⟩) − Σ log π(y*_i) on
 * prompt ⊕ ⟨answer_start⟩ ⊕ y*. Otherwise the four table keys of the NRT trainer.
 */
export type MethodPreset = { readonly sft: true } | ({ readonly sft: false } & ObjectiveChoice);

/** SPEC §5, the methods as settings of one trainer. */
export const methods: Readonly<Record<MethodName, MethodPreset>> = {
  "nrt-ws": { sft: false, aggregation: "ws_nlog", baseline: "none", advantage: "group_std", tokenWeight: "fixed" },
  "nrt-gm": { sft: false, aggregation: "gm", baseline: "none", advantage: "group_std", tokenWeight: "fixed" },
  // RLPR's optional std filter (drop groups whose reward std < β·EMA(std)) needs trainer state; it is not here.
  rlpr: { sft: false, aggregation: "am", baseline: "clip", advantage: "group_std", tokenWeight: "none" },
  verifree: { sft: false, aggregation: "prob", baseline: "none", advantage: "rloo", tokenWeight: "reward" },
  jlb: { sft: false, aggregation: "logp", baseline: "none", advantage: "loo_mean", tokenWeight: "fixed" },
  sft: { sft: true },
};

/** A value for an error message: strings quoted, anything else as String() gives it. */
function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** `value` if it is a key of `table`, else an NrtError naming `key` and listing the allowed values. */
function pickName<N extends string>(table: Readonly<Record<N, unknown>>, value: unknown, key: string): N {
  if (typeof value === "string" && Object.hasOwn(table, value)) return value as N;
  const allowed = Object.keys(table).join(", ");
  throw new NrtError(`must be one of ${allowed}; got ${show(value)}`, key);
}

/** Checks a method name, with an error listing the allowed ones. */
export function resolveMethod(name: unknown): MethodName {
  return pickName(methods, name, "method");
}

const objectiveKeys: readonly (keyof NrtObjective)[] = [
  "aggregation",
  "baseline",
  "advantage",
  "tokenWeight",
  "formatCoef",
];

/**
 * Fills the SPEC §4 defaults into a partial objective and checks it: names must be keys of their tables,
 * `formatCoef` a finite number ≥ 0, and no other key may be present (catches typos such as `token_weight`).
 * A key set to `undefined` takes its default.
 */
export function resolveObjective(partial: ObjectiveInput = {}): NrtObjective {
  if (typeof partial !== "object" || partial === null || Array.isArray(partial)) {
    throw new NrtError(`must be an object; got ${show(partial)}`, "objective");
  }
  for (const key of Object.keys(partial)) {
    if (!(objectiveKeys as readonly string[]).includes(key)) {
      throw new NrtError(`unknown key; the objective's keys are ${objectiveKeys.join(", ")}`, `objective.${key}`);
    }
  }
  const formatCoef = partial.formatCoef ?? defaultObjective.formatCoef;
  if (typeof formatCoef !== "number" || !Number.isFinite(formatCoef) || formatCoef < 0) {
    throw new NrtError(`must be a finite number ≥ 0; got ${show(formatCoef)}`, "objective.formatCoef");
  }
  return {
    aggregation: pickName(aggregations, partial.aggregation ?? defaultObjective.aggregation, "objective.aggregation"),
    baseline: pickName(baselines, partial.baseline ?? defaultObjective.baseline, "objective.baseline"),
    advantage: pickName(advantages, partial.advantage ?? defaultObjective.advantage, "objective.advantage"),
    tokenWeight: pickName(tokenWeights, partial.tokenWeight ?? defaultObjective.tokenWeight, "objective.tokenWeight"),
    formatCoef,
  };
}
