import { NrtError } from "../errors.js";
import { advantages } from "./advantages.js";
import { aggregations, emptyTraceReward } from "./aggregations.js";
import { baselines } from "./baselines.js";
import type { NrtObjective } from "./methods.js";
import { tokenWeights } from "./token-weights.js";

/** One question's K traces, scored by the model: the inputs of SPEC §3. */
export interface GroupInput {
  objective: NrtObjective;
  /** (K, T) log c_{k,i} = log π(y*_i | x, z_k, y*_<i) */
  logc: readonly (readonly number[])[];
  /** (T) log b_i = log π(y*_i | x, ∅, y*_<i), the empty trace */
  logb: readonly number[];
  /** (K) the model itself produced ⟨answer_start⟩ as its first special token */
  emitted: readonly boolean[];
}

/** Everything the loss of one group needs (SPEC §3–4), all constants (detached). */
export interface GroupScores {
  /** (K) R_k = f(c_k) */
  R: number[];
  /** (K) R'_k, after the baseline */
  Rprime: number[];
  /** (K) A_k, the advantage */
  A: number[];
  /** (K, T) s_{k,i}, the answer-token weights */
  s: number[][];
  /** (K) the weight of every trace token and of ⟨answer_start⟩ in the trace term: A_k */
  traceWeight: number[];
  /** (K) the format term's weight on ⟨answer_start⟩: λ_fmt · [not emitted_k] */
  formatWeight: number[];
  /** f(b), the empty trace's reward under the same aggregation and weights */
  fb: number;
}

/**
 * Scores one question's group: R_k = f(c_k), R'_k = baseline(R_k, f(b)), A = advantage(R'), s_k =
 * token_weight(R_k, g_k), and the per-trace weights of the trace term (A_k) and format term
 * (λ_fmt · [not emitted_k]) of L_k (SPEC §4). Throws NrtError on inconsistent shapes or non-finite results.
 */
export function scoreGroup({ objective, logc, logb, emitted }: GroupInput): GroupScores {
  const K = logc.length;
  if (K === 0) throw new NrtError("a group needs at least one trace", "group");
  if (emitted.length !== K) throw new NrtError(`${K} traces but ${emitted.length} emitted flags`, "group");
  const f = aggregations[objective.aggregation];
  const scored = logc.map((row) => f(row, logb));
  const R = scored.map((t) => t.R);
  const fb = emptyTraceReward(objective.aggregation, logb);
  const baseline = baselines[objective.baseline];
  const Rprime = R.map((r) => baseline(r, fb));
  const A = advantages[objective.advantage](Rprime);
  const tokenWeight = tokenWeights[objective.tokenWeight];
  const s = scored.map((t) => tokenWeight(t.R, t.g));
  for (let k = 0; k < K; k++) {
    if (!Number.isFinite(A[k])) throw new NrtError(`advantage A[${k}] is ${A[k]}`, "group");
    if (!s[k].every(Number.isFinite)) throw new NrtError(`answer-token weights of trace ${k} are not finite`, "group");
  }
  const formatWeight = emitted.map((e) => (e ? 0 : objective.formatCoef));
  return { R, Rprime, A, s, traceWeight: A.slice(), formatWeight, fb };
}
