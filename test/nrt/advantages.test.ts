import { describe, expect, it } from "vitest";
import { type AdvantageName, advantages } from "../../src/nrt/advantages.js";
import { expectAllclose } from "../helpers/allclose.js";

const names = Object.keys(advantages) as AdvantageName[];

describe("advantages on R' = [1, 2, 3, 6]", () => {
  // mean = 12/4 = 3, deviations d = [−2, −1, 0, 3], Σ d² = 4 + 1 + 0 + 9 = 14
  it("group_std: A = d / sqrt(14/3)", () => {
    const std = Math.sqrt(14 / 3); // unbiased: divide by K − 1 = 3 → 2.1602469
    expectAllclose(advantages.group_std([1, 2, 3, 6]), [-2 / std, -1 / std, 0, 3 / std], { atol: 1e-14 });
  });

  it("rloo: A = d · 4/3 = [−8/3, −4/3, 0, 4]", () => {
    expectAllclose(advantages.rloo([1, 2, 3, 6]), [-8 / 3, -4 / 3, 0, 4], { atol: 1e-14 });
  });

  it("loo_mean: A_k = R'_k − mean of the others, e.g. 1 − (2+3+6)/3 = −8/3, 6 − (1+2+3)/3 = 4", () => {
    expectAllclose(advantages.loo_mean([1, 2, 3, 6]), [-8 / 3, -4 / 3, 0, 4], { atol: 1e-14 });
  });
});

describe("advantages on K = 2, R' = [0, 1]", () => {
  // mean 0.5, d = [−0.5, 0.5], std = sqrt((0.25 + 0.25) / 1) = sqrt(0.5)
  it("group_std: ±0.5 / sqrt(0.5) = ±1/sqrt(2)", () => {
    expectAllclose(advantages.group_std([0, 1]), [-Math.SQRT1_2, Math.SQRT1_2], { atol: 1e-15 });
  });
  it("rloo and loo_mean: ±0.5 · 2/1 = ±1", () => {
    expect(advantages.rloo([0, 1])).toEqual([-1, 1]);
    expect(advantages.loo_mean([0, 1])).toEqual([-1, 1]);
  });
});

describe("degenerate groups give exactly zero", () => {
  for (const name of names) {
    it(`${name}: K = 1`, () => {
      expect(advantages[name]([5])).toEqual([0]);
      expect(advantages[name]([-1000])).toEqual([0]);
    });
    it(`${name}: all rewards equal (0.1 is not exact in binary)`, () => {
      expect(advantages[name]([0.1, 0.1, 0.1])).toEqual([0, 0, 0]);
      expect(advantages[name]([0, 0])).toEqual([0, 0]);
    });
  }

  it("group_std: std ≤ 1e-12 → 0", () => {
    // d = ±0.5e−13, std = sqrt(2 · 0.25e−26) ≈ 7e−14
    expect(advantages.group_std([1, 1 + 1e-13])).toEqual([0, 0]);
  });
});

describe("large rewards stay finite", () => {
  for (const name of names) {
    it(name, () => {
      const A = advantages[name]([0, Math.exp(80), 1e300, -1e300]);
      expect(A.every(Number.isFinite)).toBe(true);
    });
  }
  it("group_std scales out the magnitude: [0, 1e300] → ±1/sqrt(2)", () => {
    expectAllclose(advantages.group_std([0, 1e300]), [-Math.SQRT1_2, Math.SQRT1_2], { atol: 1e-15 });
  });
});
