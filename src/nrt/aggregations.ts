import { NrtError } from "../errors.js";

/**
 * Aggregations f (SPEC §3): one trace's answer-token probabilities c_1..c_T → its reward R, and the token signal
 * g_i = c_i ∂f/∂c_i = ∂f/∂(log c_i). Everything is computed from log c and log b, in float64, so that extreme
 * probabilities (log c = −1000 or 0) give finite numbers.
 */

/** A trace's reward R = f(c) and its token signal g_i = c_i ∂f/∂c_i (T entries). */
export interface Aggregated {
  R: number;
  g: number[];
}

/**
 * An aggregation: `logc` = log c_i of one trace, `logb` = log b_i of the empty trace (same T ≥ 1); only the
 * weighted sums read `logb`. Throws NrtError on a length mismatch, T = 0 or a non-finite log-probability.
 */
export type Aggregation = (logc: readonly number[], logb: readonly number[]) => Aggregated;

export type AggregationName = "logp" | "prob" | "gm" | "am" | "ws_inv" | "ws_nlog";

/**
 * Cap on log(w_i c_i) = log c_i − log b_i for `ws_inv`: a ratio c_i / b_i above e^80 ≈ 5.5e34 is taken as e^80,
 * so that rewards, advantages and float32 token weights stay finite. It is reached only when b_i < e^−80 · c_i;
 * below the cap the value is exact.
 */
export const MAX_LOG_RATIO = 80;

/** Checks the two log-probability arrays and returns T. */
function checkLogs(logc: readonly number[], logb: readonly number[]): number {
  const T = logc.length;
  if (T === 0) throw new NrtError("the answer has no tokens (T = 0)", "aggregation");
  if (logb.length !== T) throw new NrtError(`log c has ${T} entries but log b has ${logb.length}`, "aggregation");
  for (let i = 0; i < T; i++) {
    if (!Number.isFinite(logc[i])) throw new NrtError(`log c[${i}] is ${logc[i]}, not a finite number`, "aggregation");
    if (!Number.isFinite(logb[i])) throw new NrtError(`log b[${i}] is ${logb[i]}, not a finite number`, "aggregation");
  }
  return T;
}

function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

/** The weighted-sum family: R = (1/T) Σ terms_i, g_i = terms_i / T, where terms_i = w_i c_i. */
function meanOfTerms(terms: number[]): Aggregated {
  const T = terms.length;
  return { R: sum(terms) / T, g: terms.map((x) => x / T) };
}

export const aggregations: Readonly<Record<AggregationName, Aggregation>> = {
  /** `logp` (JLB / JEPO): R = Σ log c_i, g_i = 1. */
  logp(logc, logb) {
    const T = checkLogs(logc, logb);
    return { R: sum(logc), g: new Array<number>(T).fill(1) };
  },

  /** `prob` (VeriFree): R = Π c_i = exp(Σ log c_i), g_i = R. */
  prob(logc, logb) {
    const T = checkLogs(logc, logb);
    const R = Math.exp(sum(logc));
    return { R, g: new Array<number>(T).fill(R) };
  },

  /** `gm` (NRT-GM): R = exp((1/T) Σ log c_i), g_i = R / T. */
  gm(logc, logb) {
    const T = checkLogs(logc, logb);
    const R = Math.exp(sum(logc) / T);
    return { R, g: new Array<number>(T).fill(R / T) };
  },

  /** `am` (RLPR): R = (1/T) Σ c_i, g_i = c_i / T. */
  am(logc, logb) {
    checkLogs(logc, logb);
    return meanOfTerms(logc.map((l) => Math.exp(l)));
  },

  /**
   * `ws_inv` (NRT-WS(1/p)): R = (1/T) Σ w_i c_i with w_i = 1 / b_i, g_i = w_i c_i / T.
   * w_i c_i = exp(log c_i − log b_i), capped at exp(MAX_LOG_RATIO).
   */
  ws_inv(logc, logb) {
    checkLogs(logc, logb);
    return meanOfTerms(logc.map((l, i) => Math.exp(Math.min(l - logb[i], MAX_LOG_RATIO))));
  },

  /** `ws_nlog` (NRT-WS(−log p), the default): R = (1/T) Σ w_i c_i with w_i = −log b_i, g_i = w_i c_i / T. */
  ws_nlog(logc, logb) {
    checkLogs(logc, logb);
    // 0 − log b rather than −log b, so that b = 1 gives w = +0
    return meanOfTerms(logc.map((l, i) => (0 - logb[i]) * Math.exp(l)));
  },
};

/**
 * f(b), the reward of the empty trace (the `clip` baseline, SPEC §3): the aggregation applied to the empty-trace
 * probabilities with the same weights, i.e. f with c = b and w computed from b.
 * So `ws_inv` gives (1/T) Σ (1/b_i)·b_i = 1 and `ws_nlog` gives (1/T) Σ −log b_i · b_i.
 */
export function emptyTraceReward(aggregation: AggregationName, logb: readonly number[]): number {
  return aggregations[aggregation](logb, logb).R;
}
