import { describe, expect, it } from "vitest";
import { binaryEntropy, HARD_TOKEN_EDGES, hardTokenBins } from "../../src/eval/metrics.js";

describe("binaryEntropy", () => {
  it("is −p ln p − (1−p) ln(1−p) in nats, from ln p", () => {
    expect(binaryEntropy(Math.log(0.5))).toBeCloseTo(Math.LN2, 12);
    expect(binaryEntropy(Math.log(0.8))).toBeCloseTo(-(0.8 * Math.log(0.8) + 0.2 * Math.log(0.2)), 12);
    expect(binaryEntropy(Math.log(0.2))).toBeCloseTo(binaryEntropy(Math.log(0.8)), 12);
  });
  it("is 0 at p = 0 and p = 1, and finite next to them", () => {
    expect(binaryEntropy(0)).toBe(0);
    expect(binaryEntropy(Number.NEGATIVE_INFINITY)).toBe(0);
    const nearOne = binaryEntropy(-1e-12); // 1 − p ≈ 1e-12: h ≈ 1e-12 (1 − ln 1e-12)
    expect(nearOne / (1e-12 * (1 - Math.log(1e-12)))).toBeCloseTo(1, 9);
  });
});

describe("hardTokenBins", () => {
  it("bins by p_no_trace over [0,0.1) [0.1,0.3) [0.3,0.6) [0.6,0.9) [0.9,1] and averages both probabilities", () => {
    expect(HARD_TOKEN_EDGES).toEqual([0, 0.1, 0.3, 0.6, 0.9, 1]);
    const b = [0, 0.05, 0.1, 0.29, 0.3, 0.9, 1];
    const c = [0.5, 0.7, 0.2, 0.4, 0.3, 1, 1];
    expect(hardTokenBins(b, c)).toEqual([
      { bin: "[0,0.1)", lo: 0, hi: 0.1, count: 2, mean_p_no_trace: 0.025, mean_p_after_trace: 0.6 },
      { bin: "[0.1,0.3)", lo: 0.1, hi: 0.3, count: 2, mean_p_no_trace: 0.195, mean_p_after_trace: 0.30000000000000004 },
      { bin: "[0.3,0.6)", lo: 0.3, hi: 0.6, count: 1, mean_p_no_trace: 0.3, mean_p_after_trace: 0.3 },
      { bin: "[0.6,0.9)", lo: 0.6, hi: 0.9, count: 0, mean_p_no_trace: null, mean_p_after_trace: null },
      { bin: "[0.9,1]", lo: 0.9, hi: 1, count: 2, mean_p_no_trace: 0.95, mean_p_after_trace: 1 },
    ]);
  });
});
