import { NrtError } from "../errors.js";
import type { GroupScores } from "./group.js";

/**
 * Per-token loss weights for the engine (SPEC §4).
 *
 * The engine's primitive takes a weight w_t for every token of a packed sequence and computes
 *     loss = Σ_t w_t · (−log π_θ(x_t | x_<t)),     ∂loss/∂θ = Σ_t w_t · (−∇_θ log π_θ(x_t | x_<t)),
 * with w treated as a constant (detached). In SPEC §4 the loss of trace k is
 *     L_k = − A_k · Σ_{t ∈ z_k ⊕ ⟨answer_start⟩} log π_θ(t | ·)            trace term
 *           − Σ_i s_{k,i} · log c_{k,i}                                    answer term
 *           − λ_fmt · [not emitted_k] · log π_θ(⟨answer_start⟩ | x, z_k)   format term
 *     L   = (1 / (G·K)) · Σ_g Σ_k L_{g,k}
 * and A_k, s_{k,i} are constants too (REINFORCE: the reward only scales ∇ log π). Every term is a constant
 * times −log π of one token of the sequence prompt ⊕ z_k ⊕ ⟨answer_start⟩ ⊕ y*, so with
 *     w_t = 0                                  t in the prompt (not trained)
 *     w_t = A_k / (G·K)                        t in z_k
 *     w_t = (A_k + λ_fmt·[not emitted_k]) / (G·K)   t = ⟨answer_start⟩
 *     w_t = s_{k,i} / (G·K)                    t = y*_i (log π(y*_i | ·) = log c_{k,i})
 * the primitive's loss is exactly L_k / (G·K) and its gradient exactly ∇L_k / (G·K); summing the primitive over
 * all sequences of the batch gives L and ∇L.
 *
 * With several updates per rollout batch the trace term is −A_k · sg(clip(ρ_t, 0.8, 1.28)) · log π_θ(t), masked
 * where (A_k > 0 and ρ_t > 1.28) or (A_k < 0 and ρ_t < 0.8): its weight becomes A_k · clip(ρ_t, 0.8, 1.28) (or 0)
 * on the trace tokens and ⟨answer_start⟩, still detached. The answer and format terms are unchanged.
 *
 * The engine reports log π = 0 at each sequence's first token, so the prompt must have at least one token.
 */

/** The lengths of one training sequence prompt(x) ⊕ z ⊕ ⟨answer_start⟩ ⊕ y* (SPEC §2). */
export interface SequenceLayout {
  /** P ≥ 1, prompt tokens */
  promptLen: number;
  /** Z ≥ 0, trace tokens */
  traceLen: number;
  /** T ≥ 1, answer tokens including ⟨eos⟩ */
  answerLen: number;
}

/** Lower and upper bounds of ρ_t in the multi-update trace term (absolute bounds, not 1 ± ε). */
export const RATIO_LOW = 0.8;
export const RATIO_HIGH = 1.28;

/**
 * Where each part of prompt(x) ⊕ z ⊕ ⟨answer_start⟩ ⊕ y* starts within it (SPEC §2): z_1 at P, ⟨answer_start⟩ at
 * P + Z, y*_1 at P + Z + 1 (answer token i, 0-based, at P + Z + 1 + i); `end` = P + Z + 1 + T, its length. The one
 * place that knows the layout: scoring, the loss weights and the metrics all index sequences through it.
 */
export function sequenceOffsets({ promptLen: P, traceLen: Z, answerLen: T }: SequenceLayout): {
  trace: number;
  answerStart: number;
  answer: number;
  end: number;
} {
  return { trace: P, answerStart: P + Z, answer: P + Z + 1, end: P + Z + 1 + T };
}

/** P + Z + 1 + T, the number of tokens (and weights) of the sequence. */
export function sequenceLength(layout: SequenceLayout): number {
  return sequenceOffsets(layout).end;
}

/** P + Z, the position of ⟨answer_start⟩; answer token i (0-based) is at P + Z + 1 + i. */
export function answerStartIndex(layout: SequenceLayout): number {
  return sequenceOffsets(layout).answerStart;
}

/**
 * The multi-update trace weight of one token (SPEC §4): A · clip(ρ, 0.8, 1.28), or 0 where
 * (A > 0 and ρ > 1.28) or (A < 0 and ρ < 0.8). With ρ = 1 it is A.
 */
export function clippedTraceWeight(A: number, rho: number): number {
  if ((A > 0 && rho > RATIO_HIGH) || (A < 0 && rho < RATIO_LOW)) return 0;
  return A * Math.min(Math.max(rho, RATIO_LOW), RATIO_HIGH);
}

function checkCount(n: number, min: number, what: string): void {
  if (!Number.isInteger(n) || n < min) throw new NrtError(`must be an integer ≥ ${min}; got ${n}`, what);
}

/**
 * The weights (length P + Z + 1 + T) of trace k's sequence so that Σ_t w_t · (−log π_t) = L_k / (G·K):
 * 0 on the prompt, A_k·r_t on z_k, A_k·r_t + λ_fmt·[not emitted_k] on ⟨answer_start⟩, s_{k,i} on y*_i, all
 * divided by `norm` = G·K. r_t = 1 without `ratios`; with `ratios` (ρ_t = π_θ(t)/π_old(t) for the Z trace tokens
 * then ⟨answer_start⟩, Z + 1 entries) the trace term is clipped and masked as in `clippedTraceWeight`.
 */
export function traceSequenceWeights(
  layout: SequenceLayout,
  scores: GroupScores,
  k: number,
  norm: number,
  ratios?: ArrayLike<number>,
): Float32Array {
  const { promptLen: P, traceLen: Z, answerLen: T } = layout;
  checkCount(P, 1, "promptLen");
  checkCount(Z, 0, "traceLen");
  checkCount(T, 1, "answerLen");
  if (!Number.isInteger(k) || k < 0 || k >= scores.A.length) {
    throw new NrtError(`trace ${k} is not in a group of ${scores.A.length}`, "k");
  }
  if (!(norm > 0) || !Number.isFinite(norm)) throw new NrtError(`must be a finite number > 0; got ${norm}`, "norm");
  const s = scores.s[k];
  if (s.length !== T) throw new NrtError(`answerLen is ${T} but the group's answer has ${s.length} tokens`, "layout");
  if (ratios !== undefined) {
    if (ratios.length !== Z + 1) throw new NrtError(`need Z + 1 = ${Z + 1} ratios, got ${ratios.length}`, "ratios");
    for (let j = 0; j <= Z; j++) {
      if (!(ratios[j] >= 0) || !Number.isFinite(ratios[j])) {
        throw new NrtError(`ρ[${j}] is ${ratios[j]}, not a finite number ≥ 0`, "ratios");
      }
    }
  }
  const A = scores.traceWeight[k];
  const at = sequenceOffsets(layout);
  const w = new Float32Array(at.end); // prompt: 0
  for (let j = 0; j <= Z; j++) {
    const trace = ratios === undefined ? A : clippedTraceWeight(A, ratios[j]);
    const format = at.trace + j === at.answerStart ? scores.formatWeight[k] : 0; // never clipped
    w[at.trace + j] = (trace + format) / norm;
  }
  for (let i = 0; i < T; i++) w[at.answer + i] = s[i] / norm;
  return w;
}

/** The three terms of SPEC §4's loss, each summed over traces (the metrics' `loss/trace`, `loss/answer`, `loss/format`). */
export interface LossTerms {
  trace: number;
  answer: number;
  format: number;
}

/**
 * Adds trace k's three terms of L_k / norm into `sum`, from the same coefficients as `traceSequenceWeights` (one
 * update, ρ = 1), so that over a batch Σ_t w_t · (−log π_t) = trace + answer + format. `logprobs` holds log π of every
 * token of the packed batch; the trace's sequence starts at `start`.
 */
export function addLossTerms(
  sum: LossTerms,
  layout: SequenceLayout,
  scores: GroupScores,
  k: number,
  norm: number,
  logprobs: ArrayLike<number>,
  start: number,
): void {
  const at = sequenceOffsets(layout);
  const nll = (t: number) => -logprobs[start + t];
  let trace = 0;
  for (let t = at.trace; t <= at.answerStart; t++) trace += nll(t);
  sum.trace += (scores.traceWeight[k] * trace) / norm;
  sum.format += (scores.formatWeight[k] * nll(at.answerStart)) / norm;
  for (let i = 0; i < layout.answerLen; i++) sum.answer += (scores.s[k][i] * nll(at.answer + i)) / norm;
}

/**
 * The SFT weights (length P + 1 + T) of prompt ⊕ ⟨answer_start⟩ ⊕ y* (SPEC §5, §8): 0 on the prompt and 1/G on
 * ⟨answer_start⟩ and every y*_i, so that Σ_t w_t · (−log π_t) = (1/G) · (−log π(⟨answer_start⟩) − Σ_i log π(y*_i)).
 */
export function sftSequenceWeights(promptLen: number, answerLen: number, numGroups: number): Float32Array {
  checkCount(promptLen, 1, "promptLen");
  checkCount(answerLen, 1, "answerLen");
  checkCount(numGroups, 1, "numGroups");
  const w = new Float32Array(promptLen + 1 + answerLen);
  w.fill(1 / numGroups, promptLen);
  return w;
}
