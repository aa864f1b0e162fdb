import { describe, expect, it } from "vitest";
import { byKTable, type Cell, mechanismTable, resultsTable } from "../../src/demo/experiment.js";
import { mechanismOf } from "../../src/demo/mechanism.js";
import type { EvalResult } from "../../src/eval/evaluate.js";

describe("mechanism figures of a run", () => {
  it("averages R, adv std and zero-variance share over steps, term norms over the logged steps", () => {
    const m = mechanismOf([
      {
        step: 1,
        "reward/mean": 0.1,
        "adv/std": 1,
        "adv/zero_std_frac": 0,
        "grad_norm/trace": 3,
        "grad_norm/answer": 1,
        "grad_norm/format": 0.5,
      },
      { step: 2, "reward/mean": 0.3, "adv/std": 0.5, "adv/zero_std_frac": 0.5 },
      {
        step: 3,
        "reward/mean": 0.2,
        "adv/std": 0,
        "adv/zero_std_frac": 1,
        "grad_norm/trace": 1,
        "grad_norm/answer": 3,
        "grad_norm/format": 0.5,
      },
    ])!;
    expect(m.rewardMean).toBeCloseTo(0.2, 12);
    expect(m.advStd).toBeCloseTo(0.5, 12);
    expect(m.zeroStdFrac).toBeCloseTo(0.5, 12);
    expect([m.gradTrace, m.gradAnswer, m.gradFormat]).toEqual([2, 2, 0.5]);
    expect(m.traceShare).toBe(0.5);
  });

  it("is null for a run without rewards (SFT), and has no norms where none were logged", () => {
    expect(mechanismOf([{ step: 1, loss: 2 }])).toBeNull();
    const m = mechanismOf([{ step: 1, "reward/mean": 1e-5, "adv/std": 0.1, "adv/zero_std_frac": 0 }])!;
    expect([m.gradTrace, m.gradAnswer, m.traceShare]).toEqual([null, null, null]);
  });
});

const ev = (acc: number, exact: number, byK: Record<string, [number, number]>): EvalResult =>
  ({
    n: 10,
    accuracy: acc,
    accuracy_exact: exact,
    accuracy_sampled: acc,
    accuracy_direct: 0.1,
    accuracy_forced: 0.9,
    trace_rate: 1,
    trace_len_mean: 20,
    trace_entropy: 0.01,
    decision_entropy: 0.1,
    hard_tokens: [],
    by_k: Object.fromEntries(Object.entries(byK).map(([k, [a, e]]) => [k, { n: 5, accuracy: a, accuracy_exact: e }])),
    questions: [],
    samples: [],
  }) as unknown as EvalResult;

const mech = (r: number, gt: number, ga: number) => ({
  rewardMean: r,
  advStd: 0.9,
  zeroStdFrac: 0.25,
  gradTrace: gt,
  gradAnswer: ga,
  gradFormat: 0,
  traceShare: gt / (gt + ga),
});

const CELLS: Cell[] = [
  { world: "chainlong", method: "base", seed: 0, eval: ev(0.3, 0.05, { "3": [0.6, 0.1], "4": [0, 0] }), mech: null },
  {
    world: "chainlong",
    method: "verifree",
    seed: 0,
    eval: ev(0.8, 0.2, { "3": [1, 0.3], "4": [0.6, 0.1] }),
    mech: mech(1e-5, 1, 3),
  },
  {
    world: "chainlong",
    method: "verifree",
    seed: 1,
    eval: ev(0.6, 0.1, { "3": [0.8, 0.1], "4": [0.4, 0.1] }),
    mech: mech(3e-5, 3, 1),
  },
];

describe("experiment tables", () => {
  it("results: free accuracy mean (min–max), per seed, and exact match", () => {
    const lines = resultsTable(CELLS).split("\n");
    expect(lines[0]).toContain("| exact match |");
    expect(lines[3]).toBe(
      "| chainlong | verifree | 2 | 70.0 (60.0–80.0) | 80.0 / 60.0 | 15.0 | 10.0 | 100.0 | 20.0 | 0.010 |",
    );
  });

  it("by k: accuracy and exact match per k, mean (min–max) over seeds", () => {
    expect(byKTable(CELLS).split("\n")).toEqual([
      "| method | k=3 | k=3 exact | k=4 | k=4 exact |",
      "|---|---|---|---|---|",
      "| base | 60.0 | 10.0 | 0.0 | 0.0 |",
      "| verifree | 90.0 (80.0–100.0) | 20.0 (10.0–30.0) | 50.0 (40.0–60.0) | 10.0 (10.0–10.0) |",
    ]);
  });

  it("mechanism: means over seeds, tiny rewards in exponent form, no row for the base", () => {
    expect(mechanismTable(CELLS).split("\n")).toEqual([
      "| method | mean R | adv std | zero-variance groups | ‖∇ trace term‖ | ‖∇ answer term‖ | trace share |",
      "|---|---|---|---|---|---|---|",
      "| verifree | 2.00e-5 | 0.900 | 0.250 | 2.000 | 2.000 | 0.500 |",
    ]);
  });
});
