import { describe, expect, it } from "vitest";
import { type AggregationName, aggregations, emptyTraceReward, MAX_LOG_RATIO } from "../../src/nrt/aggregations.js";
import { expectAllclose } from "../helpers/allclose.js";

const names = Object.keys(aggregations) as AggregationName[];
const ln2 = Math.LN2;

// c = [0.5, 0.25] for a trace, b = [0.5, 0.125] for the empty trace (T = 2)
const logc = [Math.log(0.5), Math.log(0.25)];
const logb = [Math.log(0.5), Math.log(0.125)];

describe("aggregations on c = [0.5, 0.25], b = [0.5, 0.125]", () => {
  it("logp: R = log 0.5 + log 0.25 = log 0.125 = −3 ln 2, g = [1, 1]", () => {
    const { R, g } = aggregations.logp(logc, logb);
    expect(R).toBeCloseTo(-3 * ln2, 14);
    expect(g).toEqual([1, 1]);
  });

  it("prob: R = 0.5 · 0.25 = 0.125, g_i = R", () => {
    const { R, g } = aggregations.prob(logc, logb);
    expect(R).toBeCloseTo(0.125, 15);
    expectAllclose(g, [0.125, 0.125], { atol: 1e-15 });
  });

  it("gm: R = sqrt(0.5 · 0.25) = sqrt(0.125), g_i = R / 2", () => {
    const { R, g } = aggregations.gm(logc, logb);
    expect(R).toBeCloseTo(Math.sqrt(0.125), 15); // 0.35355339…
    expectAllclose(g, [Math.sqrt(0.125) / 2, Math.sqrt(0.125) / 2], { atol: 1e-15 });
  });

  it("am: R = (0.5 + 0.25) / 2 = 0.375, g = [0.5/2, 0.25/2] = [0.25, 0.125]", () => {
    const { R, g } = aggregations.am(logc, logb);
    expect(R).toBeCloseTo(0.375, 15);
    expectAllclose(g, [0.25, 0.125], { atol: 1e-15 });
  });

  it("ws_inv: w = [1/0.5, 1/0.125] = [2, 8], w·c = [1, 2], R = 3/2, g = [0.5, 1]", () => {
    const { R, g } = aggregations.ws_inv(logc, logb);
    expect(R).toBeCloseTo(1.5, 14);
    expectAllclose(g, [0.5, 1], { atol: 1e-14 });
  });

  it("ws_nlog: w = [ln 2, 3 ln 2], w·c = [0.5 ln 2, 0.75 ln 2], R = 1.25 ln 2 / 2 = 0.625 ln 2", () => {
    const { R, g } = aggregations.ws_nlog(logc, logb);
    expect(R).toBeCloseTo(0.625 * ln2, 15); // 0.43321698…
    expectAllclose(g, [0.25 * ln2, 0.375 * ln2], { atol: 1e-15 });
  });
});

describe("emptyTraceReward f(b), b = [0.5, 0.125]", () => {
  // f applied to b with weights from b
  const expected: Record<AggregationName, number> = {
    logp: -4 * ln2, // log(0.5 · 0.125) = log(1/16)
    prob: 0.0625, // 0.5 · 0.125
    gm: 0.25, // sqrt(1/16)
    am: 0.3125, // (0.5 + 0.125) / 2
    ws_inv: 1, // ((1/0.5)·0.5 + (1/0.125)·0.125) / 2
    ws_nlog: 0.4375 * ln2, // (ln 2 · 0.5 + 3 ln 2 · 0.125) / 2 = 0.875 ln 2 / 2
  };
  for (const name of names) {
    it(name, () => expect(emptyTraceReward(name, logb)).toBeCloseTo(expected[name], 14));
  }
});

describe("T = 1: c = [0.2], b = [0.4]", () => {
  const c1 = [Math.log(0.2)];
  const b1 = [Math.log(0.4)];
  const expected: Record<AggregationName, { R: number; g: number }> = {
    logp: { R: Math.log(0.2), g: 1 },
    prob: { R: 0.2, g: 0.2 },
    gm: { R: 0.2, g: 0.2 }, // exp(log 0.2 / 1), g = R / 1
    am: { R: 0.2, g: 0.2 },
    ws_inv: { R: 0.5, g: 0.5 }, // 0.2 / 0.4
    ws_nlog: { R: -Math.log(0.4) * 0.2, g: -Math.log(0.4) * 0.2 }, // 0.91629073 · 0.2 = 0.18325815
  };
  for (const name of names) {
    it(name, () => {
      const { R, g } = aggregations[name](c1, b1);
      expect(R).toBeCloseTo(expected[name].R, 14);
      expect(g).toHaveLength(1);
      expect(g[0]).toBeCloseTo(expected[name].g, 14);
    });
  }
});

describe("extreme probabilities stay finite", () => {
  const cases: { logc: number[]; logb: number[] }[] = [
    { logc: [-1000, 0], logb: [-1000, 0] },
    { logc: [-1000, -1000], logb: [0, 0] },
    { logc: [0, 0], logb: [-1000, -1000] },
    { logc: [0], logb: [0] },
    { logc: [-1000], logb: [-1000] },
  ];
  for (const name of names) {
    it(name, () => {
      for (const { logc: lc, logb: lb } of cases) {
        const { R, g } = aggregations[name](lc, lb);
        expect(Number.isFinite(R), `${name} R on ${lc}, ${lb}`).toBe(true);
        expect(g.every(Number.isFinite), `${name} g on ${lc}, ${lb}`).toBe(true);
        expect(Number.isFinite(emptyTraceReward(name, lb))).toBe(true);
      }
    });
  }

  it("hand values on log c = [−1000, 0], log b = [−1000, 0]", () => {
    const lc = [-1000, 0];
    const lb = [-1000, 0];
    expect(aggregations.logp(lc, lb).R).toBe(-1000); // −1000 + 0
    expect(aggregations.prob(lc, lb).R).toBe(0); // e^−1000 underflows to 0
    expect(aggregations.gm(lc, lb).R).toBe(Math.exp(-500)); // exp(−1000 / 2) ≈ 7e−218, not 0
    expect(aggregations.am(lc, lb)).toEqual({ R: 0.5, g: [0, 0.5] }); // (e^−1000 + 1) / 2
    expect(aggregations.ws_inv(lc, lb)).toEqual({ R: 1, g: [0.5, 0.5] }); // c/b = [1, 1]
    expect(aggregations.ws_nlog(lc, lb)).toEqual({ R: 0, g: [0, 0] }); // w = [1000, 0], w·c = [1000·e^−1000, 0]
  });

  it("ws_inv caps c/b at e^MAX_LOG_RATIO: log c = 0, log b = −1000", () => {
    const { R, g } = aggregations.ws_inv([0], [-1000]);
    expect(R).toBe(Math.exp(MAX_LOG_RATIO));
    expect(g).toEqual([Math.exp(MAX_LOG_RATIO)]);
    expect(Math.fround(R)).toBeLessThan(Number.POSITIVE_INFINITY); // still finite in float32
  });

  it("b = 1 gives ws_nlog weight +0, not −0", () => {
    expect(Object.is(aggregations.ws_nlog([0], [0]).R, 0)).toBe(true);
  });
});

describe("g_i = c_i ∂f/∂c_i = ∂f/∂(log c_i), by central differences", () => {
  const lc = [Math.log(0.7), Math.log(0.05), Math.log(0.3)];
  const lb = [Math.log(0.2), Math.log(0.9), Math.log(0.01)];
  const h = 1e-6;
  for (const name of names) {
    it(name, () => {
      const { g } = aggregations[name](lc, lb);
      const fd = lc.map((_, i) => {
        const up = lc.map((v, j) => (j === i ? v + h : v));
        const dn = lc.map((v, j) => (j === i ? v - h : v));
        return (aggregations[name](up, lb).R - aggregations[name](dn, lb).R) / (2 * h);
      });
      expectAllclose(g, fd, { atol: 1e-8, rtol: 1e-6, what: name });
    });
  }
});

describe("input checks", () => {
  it("rejects T = 0, mismatched lengths and non-finite log-probabilities", () => {
    expect(() => aggregations.gm([], [])).toThrow(/T = 0/);
    expect(() => aggregations.gm([0, 0], [0])).toThrow(/2 entries but log b has 1/);
    expect(() => aggregations.gm([Number.NaN], [0])).toThrow(/log c\[0\] is NaN/);
    expect(() => aggregations.am([0], [Number.NEGATIVE_INFINITY])).toThrow(/log b\[0\] is -Infinity/);
  });
});
