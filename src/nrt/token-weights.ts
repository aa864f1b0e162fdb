/**
 * Answer-token weights s_{k,i} (SPEC §3, `token_weight`): the coefficient of −log c_{k,i} in the answer term of
 * L_k. All are constants (detached) in the loss.
 */

export type TokenWeightName = "fixed" | "derived" | "reward" | "none";

/** s_{k,1..T} from trace k's reward R_k and token signal g_{k,1..T} (T = g.length). Returns a new array. */
export type TokenWeight = (R: number, g: readonly number[]) => number[];

export const tokenWeights: Readonly<Record<TokenWeightName, TokenWeight>> = {
  /** `fixed`: s_{k,i} = 1 (a plain likelihood term on y*, the paper's main runs). */
  fixed: (_R, g) => new Array<number>(g.length).fill(1),
  /** `derived`: s_{k,i} = g_{k,i} = c_{k,i} ∂f/∂c_{k,i}, detached (the exact gradient of E[R]). */
  derived: (_R, g) => g.slice(),
  /** `reward`: s_{k,i} = R_k, detached (the raw reward, before baseline and advantage). */
  reward: (R, g) => new Array<number>(g.length).fill(R),
  /** `none`: s_{k,i} = 0 (no answer term). */
  none: (_R, g) => new Array<number>(g.length).fill(0),
};
