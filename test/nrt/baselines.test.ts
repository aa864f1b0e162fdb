import { describe, expect, it } from "vitest";
import { baselines } from "../../src/nrt/baselines.js";

describe("baselines", () => {
  it("none: R' = R", () => {
    expect(baselines.none(0.3, 0.5)).toBe(0.3);
    expect(baselines.none(-2, 5)).toBe(-2);
  });

  it("clip: R' = max(0, R − f(b)) when R > f(b)", () => {
    expect(baselines.clip(0.75, 0.5)).toBe(0.25); // 0.75 − 0.5
    expect(baselines.clip(-2, -3)).toBe(1); // logp rewards are negative: −2 − (−3)
  });

  it("clip: R < f(b) gives 0, R = f(b) gives 0", () => {
    expect(baselines.clip(0.3, 0.5)).toBe(0); // max(0, −0.2)
    expect(baselines.clip(-4, -3)).toBe(0); // max(0, −1)
    expect(baselines.clip(0.5, 0.5)).toBe(0);
  });
});
