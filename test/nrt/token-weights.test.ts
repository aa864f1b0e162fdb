import { describe, expect, it } from "vitest";
import { tokenWeights } from "../../src/nrt/token-weights.js";

describe("token weights s_{k,i} for R = 0.3, g = [0.1, 0.2]", () => {
  const g = [0.1, 0.2];
  it("fixed → 1", () => expect(tokenWeights.fixed(0.3, g)).toEqual([1, 1]));
  it("derived → g (a copy)", () => {
    const s = tokenWeights.derived(0.3, g);
    expect(s).toEqual([0.1, 0.2]);
    expect(s).not.toBe(g);
  });
  it("reward → R on every token", () => expect(tokenWeights.reward(0.3, g)).toEqual([0.3, 0.3]));
  it("none → 0", () => expect(tokenWeights.none(0.3, g)).toEqual([0, 0]));
  it("T = 1", () => {
    expect(tokenWeights.fixed(-2, [1])).toEqual([1]);
    expect(tokenWeights.reward(-2, [1])).toEqual([-2]);
  });
});
