/**
 * Advantages over the K traces of one question (SPEC §3): R'_1..R'_K → A_1..A_K. With K = 1 every A_k = 0.
 * Means are taken as R'_1 + Σ_j (R'_j − R'_1) / K, which is exactly R'_1 when all rewards are equal, so equal
 * rewards give advantages of exactly 0.
 */

export type AdvantageName = "group_std" | "rloo" | "loo_mean";

/** A_k for every trace of one group, from the baselined rewards R'_k. */
export type Advantage = (Rp: readonly number[]) => number[];

/** Group standard deviations at or below this give all-zero `group_std` advantages. */
export const MIN_GROUP_STD = 1e-12;

/** mean_j R'_j, shifted by R'_1 (exact when all values are equal). */
function shiftedMean(x: readonly number[]): number {
  const x0 = x[0];
  let s = 0;
  for (const v of x) s += v - x0;
  return x0 + s / x.length;
}

/** √(Σ d_j² / (K − 1)) of the deviations d, scaled by max |d_j| so that large rewards do not overflow. */
function unbiasedStd(d: readonly number[]): number {
  let scale = 0;
  for (const v of d) scale = Math.max(scale, Math.abs(v));
  if (scale === 0) return 0;
  let ss = 0;
  for (const v of d) ss += (v / scale) ** 2;
  return scale * Math.sqrt(ss / (d.length - 1));
}

export const advantages: Readonly<Record<AdvantageName, Advantage>> = {
  /** `group_std`: A_k = (R'_k − mean_j R'_j) / std_j R'_j, unbiased (K − 1) std; std ≤ 1e-12 → every A_k = 0. */
  group_std(Rp) {
    const K = Rp.length;
    if (K < 2) return new Array<number>(K).fill(0);
    const mean = shiftedMean(Rp);
    const d = Rp.map((r) => r - mean);
    const std = unbiasedStd(d);
    if (!(std > MIN_GROUP_STD)) return new Array<number>(K).fill(0);
    return d.map((v) => v / std);
  },

  /** `rloo`: A_k = (R'_k − mean_j R'_j) · K / (K − 1). */
  rloo(Rp) {
    const K = Rp.length;
    if (K < 2) return new Array<number>(K).fill(0);
    const mean = shiftedMean(Rp);
    return Rp.map((r) => ((r - mean) * K) / (K - 1));
  },

  /** `loo_mean`: A_k = R'_k − mean_{j≠k} R'_j = Σ_{j≠k} (R'_k − R'_j) / (K − 1); the same numbers as `rloo`. */
  loo_mean(Rp) {
    const K = Rp.length;
    if (K < 2) return new Array<number>(K).fill(0);
    return Rp.map((rk, k) => {
      let s = 0;
      for (let j = 0; j < K; j++) if (j !== k) s += rk - Rp[j];
      return s / (K - 1);
    });
  },
};
