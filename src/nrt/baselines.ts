/** Baselines (SPEC §3): a trace's reward R_k and the empty trace's reward f(b) → the baselined reward R'_k. */

export type BaselineName = "none" | "clip";

/** R'_k from R_k and f(b) (the empty trace's reward under the same aggregation and weights). */
export type Baseline = (R: number, fb: number) => number;

export const baselines: Readonly<Record<BaselineName, Baseline>> = {
  /** `none`: R'_k = R_k. */
  none: (R) => R,
  /** `clip`: R'_k = max(0, R_k − f(b)); only a trace that beats answering at once is rewarded. */
  clip: (R, fb) => Math.max(0, R - fb),
};
