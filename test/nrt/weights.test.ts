import { describe, expect, it } from "vitest";
import { scoreGroup } from "../../src/nrt/group.js";
import { defaultObjective } from "../../src/nrt/methods.js";
import {
  answerStartIndex,
  clippedTraceWeight,
  type SequenceLayout,
  sequenceLength,
  sftSequenceWeights,
  traceSequenceWeights,
} from "../../src/nrt/weights.js";
import { expectAllclose } from "../helpers/allclose.js";

const log = (xs: number[]) => xs.map(Math.log);

// The hand-made group of group.test.ts: default objective, K = 3, T = 2,
// A = [−19, 47, −28] / sqrt(1677), s = 1, λ_fmt · [not emitted] = [0, 0.3, 0]. One group: G = 1, G·K = 3.
const scores = scoreGroup({
  objective: defaultObjective,
  logc: [log([0.5, 0.25]), log([1, 1]), log([0.5, 0.125])],
  logb: log([0.5, 0.125]),
  emitted: [true, false, true],
});
const A = [-19, 47, -28].map((d) => d / Math.sqrt(1677));
const GK = 3;
// prompt of 2 tokens; trace 0 has Z = 2, trace 1 (truncated, not emitted) Z = 1, trace 2 is empty (Z = 0)
const layouts: SequenceLayout[] = [
  { promptLen: 2, traceLen: 2, answerLen: 2 },
  { promptLen: 2, traceLen: 1, answerLen: 2 },
  { promptLen: 2, traceLen: 0, answerLen: 2 },
];

describe("traceSequenceWeights on a hand-made group", () => {
  it("layout helpers", () => {
    expect(layouts.map(sequenceLength)).toEqual([7, 6, 5]); // P + Z + 1 + T
    expect(layouts.map(answerStartIndex)).toEqual([4, 3, 2]); // P + Z
  });

  it("w at every position", () => {
    const w = layouts.map((l, k) => traceSequenceWeights(l, scores, k, GK));
    //                  prompt  trace               ⟨answer_start⟩     y*_1    y*_2
    expectAllclose(w[0], [0, 0, A[0] / 3, A[0] / 3, A[0] / 3, 1 / 3, 1 / 3], { atol: 1e-7, what: "k=0" });
    expectAllclose(w[1], [0, 0, A[1] / 3, (A[1] + 0.3) / 3, 1 / 3, 1 / 3], { atol: 1e-7, what: "k=1 truncated" });
    expectAllclose(w[2], [0, 0, A[2] / 3, 1 / 3, 1 / 3], { atol: 1e-7, what: "k=2 empty trace" });
  });

  it("Σ_t w_t · (−log π_t) = L_k / (G·K) of SPEC §4, and the group's weights add up", () => {
    // arbitrary log-probabilities of each sequence's tokens (0 at the first token, as the engine reports)
    const lp = [
      [0, -1.5, -0.2, -0.7, -0.05, -0.9, -0.3],
      [0, -1.5, -2.0, -3.0, -0.4, -0.6],
      [0, -1.5, -4.0, -0.25, -0.125],
    ];
    let total = 0;
    for (let k = 0; k < 3; k++) {
      const w = traceSequenceWeights(layouts[k], scores, k, GK);
      const loss = lp[k].reduce((acc, l, t) => acc - w[t] * l, 0);
      const { promptLen: P, traceLen: Z } = layouts[k];
      // L_k = −A_k Σ_{t ∈ z ⊕ ⟨answer_start⟩} log π − Σ_i s_i log c_i − λ [not emitted] log π(⟨answer_start⟩)
      let Lk = 0;
      for (let t = P; t <= P + Z; t++) Lk -= A[k] * lp[k][t];
      for (let i = 0; i < 2; i++) Lk -= 1 * lp[k][P + Z + 1 + i];
      Lk -= scores.formatWeight[k] * lp[k][P + Z];
      expect(loss).toBeCloseTo(Lk / GK, 6);
      total += loss;
    }
    expect(Number.isFinite(total)).toBe(true);
    // answer tokens: K·T weights of 1/(G·K) sum to T/G = 2; trace terms: Σ_k A_k (Z_k + 1) / 3, plus λ/3 once
    const w = layouts.map((l, k) => traceSequenceWeights(l, scores, k, GK));
    const answerSum = w.reduce(
      (acc, wk, k) => acc + wk[answerStartIndex(layouts[k]) + 1] + wk[answerStartIndex(layouts[k]) + 2],
      0,
    );
    expect(answerSum).toBeCloseTo(2, 6);
    const traceSum = w.reduce(
      (acc, wk, k) => acc + wk.slice(2, answerStartIndex(layouts[k]) + 1).reduce((a, b) => a + b, 0),
      0,
    );
    expect(traceSum).toBeCloseTo((A[0] * 3 + A[1] * 2 + A[2] * 1 + 0.3) / 3, 6);
  });

  it("equal trace lengths: the trace-term weights of a group_std group sum to 0 (Σ_k A_k = 0)", () => {
    const same: SequenceLayout = { promptLen: 1, traceLen: 3, answerLen: 2 };
    const emittedScores = { ...scores, formatWeight: [0, 0, 0] };
    let sum = 0;
    for (let k = 0; k < 3; k++) {
      const w = traceSequenceWeights(same, emittedScores, k, GK);
      for (let t = 1; t <= 4; t++) sum += w[t];
    }
    expect(sum).toBeCloseTo(0, 6);
  });

  it("T = 1, Z = 0, K = 1 truncated: only the format term and the answer token", () => {
    const one = scoreGroup({
      objective: defaultObjective,
      logc: [[Math.log(0.2)]],
      logb: [Math.log(0.4)],
      emitted: [false],
    });
    // A = 0 (K = 1); ⟨answer_start⟩ gets 0 + 0.3, y*_1 gets 1; G·K = 2 (two groups of one)
    expectAllclose(traceSequenceWeights({ promptLen: 1, traceLen: 0, answerLen: 1 }, one, 0, 2), [0, 0.15, 0.5], {
      atol: 1e-7,
    });
  });

  it("checks its inputs", () => {
    expect(() => traceSequenceWeights({ promptLen: 0, traceLen: 1, answerLen: 2 }, scores, 0, 3)).toThrow(/promptLen/);
    expect(() => traceSequenceWeights({ promptLen: 1, traceLen: 1, answerLen: 3 }, scores, 0, 3)).toThrow(/answerLen/);
    expect(() => traceSequenceWeights(layouts[0], scores, 3, 3)).toThrow(/trace 3/);
    expect(() => traceSequenceWeights(layouts[0], scores, 0, 0)).toThrow(/norm/);
    expect(() => traceSequenceWeights(layouts[0], scores, 0, 3, [1, 1])).toThrow(/Z \+ 1 = 3 ratios/);
    expect(() => traceSequenceWeights(layouts[0], scores, 0, 3, [1, Number.NaN, 1])).toThrow(/ρ\[1\]/);
  });
});

describe("multi-update trace term: A · clip(ρ, 0.8, 1.28), masked outside the trust region", () => {
  it("clippedTraceWeight by hand", () => {
    expect(clippedTraceWeight(2, 1)).toBe(2);
    expect(clippedTraceWeight(2, 0.5)).toBeCloseTo(1.6, 15); // clip up to 0.8; A > 0 is not masked below
    expect(clippedTraceWeight(2, 1.28)).toBeCloseTo(2.56, 15); // at the bound: kept
    expect(clippedTraceWeight(2, 1.2801)).toBe(0); // A > 0 and ρ > 1.28: masked
    expect(clippedTraceWeight(-2, 0.79)).toBe(0); // A < 0 and ρ < 0.8: masked
    expect(clippedTraceWeight(-2, 0.8)).toBeCloseTo(-1.6, 15);
    expect(clippedTraceWeight(-2, 2)).toBeCloseTo(-2.56, 15); // clip down to 1.28
    expect(clippedTraceWeight(0, 5)).toBe(0);
  });

  it("ρ = 1 everywhere is the plain form", () => {
    expect(traceSequenceWeights(layouts[0], scores, 0, GK, [1, 1, 1])).toEqual(
      traceSequenceWeights(layouts[0], scores, 0, GK),
    );
  });

  it("A < 0 (trace 0): ρ = [1.5, 0.5, 1.1] → [A·1.28, masked, A·1.1] on z ⊕ ⟨answer_start⟩", () => {
    const w = traceSequenceWeights(layouts[0], scores, 0, GK, [1.5, 0.5, 1.1]);
    expectAllclose(w, [0, 0, (A[0] * 1.28) / 3, 0, (A[0] * 1.1) / 3, 1 / 3, 1 / 3], { atol: 1e-7 });
  });

  it("A > 0 (trace 1, not emitted): a masked ⟨answer_start⟩ keeps its unclipped format term", () => {
    // ρ = [0.5, 1.5]: trace token A·0.8; ⟨answer_start⟩ masked (A > 0, ρ > 1.28) → 0 + λ_fmt = 0.3
    const w = traceSequenceWeights(layouts[1], scores, 1, GK, [0.5, 1.5]);
    expectAllclose(w, [0, 0, (A[1] * 0.8) / 3, 0.3 / 3, 1 / 3, 1 / 3], { atol: 1e-7 });
    // ρ = [1.5, 1.1]: trace token masked; ⟨answer_start⟩ A·1.1 + 0.3 (λ not scaled by ρ)
    const w2 = traceSequenceWeights(layouts[1], scores, 1, GK, [1.5, 1.1]);
    expectAllclose(w2, [0, 0, 0, (A[1] * 1.1 + 0.3) / 3, 1 / 3, 1 / 3], { atol: 1e-7 });
  });
});

describe("sftSequenceWeights", () => {
  it("0 on the prompt, 1/G on ⟨answer_start⟩ and y*", () => {
    // P = 2, T = 2, G = 2
    expect(sftSequenceWeights(2, 2, 2)).toEqual(new Float32Array([0, 0, 0.5, 0.5, 0.5]));
    expect(sftSequenceWeights(1, 1, 1)).toEqual(new Float32Array([0, 1, 1]));
  });

  it("the loss is the mean over groups of −log π(⟨answer_start⟩) − Σ log π(y*_i)", () => {
    const lp = [0, -0.5, -1, -2]; // prompt, ⟨answer_start⟩, y*_1, y*_2
    const w = sftSequenceWeights(1, 2, 4);
    expect(lp.reduce((acc, l, t) => acc - w[t] * l, 0)).toBeCloseTo(3.5 / 4, 7);
  });

  it("checks its inputs", () => {
    expect(() => sftSequenceWeights(0, 2, 1)).toThrow(/promptLen/);
    expect(() => sftSequenceWeights(1, 0, 1)).toThrow(/answerLen/);
    expect(() => sftSequenceWeights(1, 1, 0)).toThrow(/numGroups/);
  });
});
