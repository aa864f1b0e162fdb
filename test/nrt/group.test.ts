import { describe, expect, it } from "vitest";
import type { AdvantageName } from "../../src/nrt/advantages.js";
import type { AggregationName } from "../../src/nrt/aggregations.js";
import type { BaselineName } from "../../src/nrt/baselines.js";
import { scoreGroup } from "../../src/nrt/group.js";
import { defaultObjective, type NrtObjective, resolveObjective } from "../../src/nrt/methods.js";
import type { TokenWeightName } from "../../src/nrt/token-weights.js";
import { expectAllclose } from "../helpers/allclose.js";

const log = (xs: number[]) => xs.map(Math.log);

describe("scoreGroup, default objective (ws_nlog, none, group_std, fixed, λ = 0.3)", () => {
  // b = [0.5, 0.125] → w = −log b = [ln 2, 3 ln 2]; write u = ln 2 / 48
  // trace 0: c = [0.5, 0.25]  → R = (0.5 ln 2 + 0.75 ln 2) / 2 = 0.625 ln 2 = 30u
  // trace 1: c = [1, 1]       → R = (ln 2 + 3 ln 2) / 2     = 2 ln 2     = 96u
  // trace 2: c = [0.5, 0.125] → R = (0.5 ln 2 + 0.375 ln 2) / 2 = 0.4375 ln 2 = 21u  (= f(b))
  // mean = 147u / 3 = 49u, d = [−19, 47, −28]u, Σ d² = 361 + 2209 + 784 = 3354, std = sqrt(3354 / 2) u = sqrt(1677) u
  const u = Math.LN2 / 48;
  const out = scoreGroup({
    objective: defaultObjective,
    logc: [log([0.5, 0.25]), log([1, 1]), log([0.5, 0.125])],
    logb: log([0.5, 0.125]),
    emitted: [true, false, true],
  });
  const A = [-19, 47, -28].map((d) => d / Math.sqrt(1677));

  it("R, R' = R, f(b)", () => {
    expectAllclose(out.R, [30 * u, 96 * u, 21 * u], { atol: 1e-14 });
    expect(out.Rprime).toEqual(out.R);
    expect(out.fb).toBeCloseTo(21 * u, 14);
  });
  it("A = d / std, and the trace weight is A", () => {
    expectAllclose(out.A, A, { atol: 1e-14 });
    expect(out.traceWeight).toEqual(out.A);
  });
  it("s = 1 on every answer token; λ_fmt only on the trace that did not emit ⟨answer_start⟩", () => {
    expect(out.s).toEqual([
      [1, 1],
      [1, 1],
      [1, 1],
    ]);
    expect(out.formatWeight).toEqual([0, 0.3, 0]);
  });
});

describe("scoreGroup, am + clip + rloo + derived (RLPR-like), b = [0.5, 0.5] → f(b) = 0.5", () => {
  // trace 0: c = [0.25, 0.25] → R = 0.25, R' = max(0, 0.25 − 0.5) = 0 (R < f(b))
  // trace 1: c = [1, 0.5]     → R = 0.75, R' = 0.25
  // rloo: mean R' = 0.125, A = [−0.125, 0.125] · 2/1 = [−0.25, 0.25]
  // derived: s = g = c / T = [0.125, 0.125] and [0.5, 0.25]
  const out = scoreGroup({
    objective: resolveObjective({ aggregation: "am", baseline: "clip", advantage: "rloo", tokenWeight: "derived" }),
    logc: [log([0.25, 0.25]), log([1, 0.5])],
    logb: log([0.5, 0.5]),
    emitted: [true, true],
  });
  it("clips below f(b) to 0", () => {
    expectAllclose(out.R, [0.25, 0.75], { atol: 1e-15 });
    expect(out.fb).toBeCloseTo(0.5, 15);
    expectAllclose(out.Rprime, [0, 0.25], { atol: 1e-15 });
  });
  it("rloo advantages and derived token weights", () => {
    expectAllclose(out.A, [-0.25, 0.25], { atol: 1e-15 });
    expectAllclose(out.s[0], [0.125, 0.125], { atol: 1e-15 });
    expectAllclose(out.s[1], [0.5, 0.25], { atol: 1e-15 });
    expect(out.formatWeight).toEqual([0, 0]);
  });
});

describe("scoreGroup edge cases", () => {
  it("K = 1, T = 1, truncated: A = 0, format weight λ", () => {
    const out = scoreGroup({
      objective: resolveObjective({ formatCoef: 0.5, tokenWeight: "reward" }),
      logc: [[Math.log(0.2)]],
      logb: [Math.log(0.4)],
      emitted: [false],
    });
    expect(out.A).toEqual([0]);
    expect(out.traceWeight).toEqual([0]);
    expect(out.formatWeight).toEqual([0.5]);
    // ws_nlog: R = −log 0.4 · 0.2; reward → s = [R]
    expect(out.s[0][0]).toBeCloseTo(-Math.log(0.4) * 0.2, 15);
  });

  it("all rewards equal → A = 0 for every advantage", () => {
    for (const advantage of ["group_std", "rloo", "loo_mean"] as const) {
      const out = scoreGroup({
        objective: resolveObjective({ advantage }),
        logc: [log([0.3, 0.6]), log([0.3, 0.6]), log([0.3, 0.6])],
        logb: log([0.1, 0.2]),
        emitted: [true, true, true],
      });
      expect(out.A).toEqual([0, 0, 0]);
    }
  });

  it("every combination stays finite on extreme probabilities", () => {
    const aggs: AggregationName[] = ["logp", "prob", "gm", "am", "ws_inv", "ws_nlog"];
    const bases: BaselineName[] = ["none", "clip"];
    const advs: AdvantageName[] = ["group_std", "rloo", "loo_mean"];
    const tws: TokenWeightName[] = ["fixed", "derived", "reward", "none"];
    for (const aggregation of aggs)
      for (const baseline of bases)
        for (const advantage of advs)
          for (const tokenWeight of tws) {
            const objective: NrtObjective = { aggregation, baseline, advantage, tokenWeight, formatCoef: 0.3 };
            for (const logb of [
              [-1000, 0],
              [0, 0],
              [-1000, -1000],
            ]) {
              const out = scoreGroup({
                objective,
                logc: [
                  [-1000, 0],
                  [0, 0],
                  [-1000, -1000],
                ],
                logb,
                emitted: [true, false, true],
              });
              const all = [...out.R, ...out.Rprime, ...out.A, ...out.s.flat(), out.fb];
              expect(all.every(Number.isFinite), JSON.stringify({ objective, logb })).toBe(true);
              // the values that become float32 weights
              expect([...out.A, ...out.s.flat()].every((x) => Number.isFinite(Math.fround(x)))).toBe(true);
            }
          }
  });

  it("checks shapes", () => {
    const base = { objective: defaultObjective, logb: [0], emitted: [true] };
    expect(() => scoreGroup({ ...base, logc: [] })).toThrow(/at least one trace/);
    expect(() => scoreGroup({ ...base, logc: [[0], [0]] })).toThrow(/2 traces but 1 emitted/);
    expect(() => scoreGroup({ ...base, logc: [[0, 0]] })).toThrow(/log b has 1/);
  });
});
