// SPEC §7 metrics on a hand-built model (see _tiny-model.ts) against values computed by hand from its bigram table.
import { beforeAll, describe, expect, it } from "vitest";
import { evaluate } from "../../src/eval/evaluate.js";
import { formatEvalTable, formatHardTokens, formatSamples } from "../../src/eval/format.js";
import type { EvalMetrics } from "../../src/eval/metrics.js";
import { type LoadedModel, loadModel } from "../../src/io/load.js";
import { setThreads } from "../../src/model/native.js";
import { BIGRAM, tinyModelDir } from "./_tiny-model.js";

const H = (ps: number[]) => -ps.reduce((s, p) => s + p * Math.log(p), 0);
const h = (p: number) => H([p, 1 - p]);

/**
 * What the model does with each question (trace limit 4). Direct answers are always "5"; an answer after a trace
 * holding `=` or a space is "7"; forced traces are "b=8" (so "7").
 */
const DATA = [
  // k=3 (`c`): no greedy trace (p(⟨answer_start⟩) = 0.8) → "5"
  { question: "a1,b+1,c+1;c", answer: "5" }, // free ✓  direct ✓  forced ✗
  { question: "a2,b+1,c+1;c", answer: "7" }, // free ✗  direct ✗  forced ✓
  // k=4 (`d`): greedy trace "=8", emitted → "7"
  { question: "a1,b+1,c+1,d+1;d", answer: "7" }, // ✓ ✗ ✓
  { question: "a2,b*2,c+1,d+1;d", answer: "3" }, // ✗ ✗ ✗
  // k=5 (`e`): trace " " ending on ⟨eos⟩; ⟨answer_start⟩ appended all the same → "7"
  { question: "a1,b+1,c+1,d+1,e+1;e", answer: "7" }, // ✓ ✗ ✓
  { question: "a2,b+1,c+1,d+1,e+1;e", answer: "5" }, // ✗ ✓ ✗
  // k=6 (`f`): trace "gggg" cut at the limit, no marker → "5"
  { question: "a1,b+1,c+1,d+1,e+1,f+1;f", answer: "5" }, // ✓ ✓ ✗
  // not a chain question (`1`): greedy trace "," (p = 0.6), emitted → "5"
  { question: "a1", answer: "5" }, // ✓ ✓ ✗
];

function expectMetrics(got: EvalMetrics, want: Omit<EvalMetrics, "hard_tokens">, what: string): void {
  for (const [key, v] of Object.entries(want))
    expect(got[key as keyof EvalMetrics], `${what} ${key}`).toBeCloseTo(v, 5);
}

describe("evaluate on a hand-built model", () => {
  let loaded: LoadedModel;
  beforeAll(() => {
    setThreads(1);
    loaded = loadModel(tinyModelDir());
  });
  const records = DATA.map((r, i) => ({ ...r, line: i + 1 }));

  it("computes every SPEC §7 metric, overall and by_k", () => {
    const r = evaluate(loaded, records, { maxTraceTokens: 4, seed: 0 });
    const zeroH = 0; // entropy of a certain step (p ≈ 1 − 29·e^-40)
    expectMetrics(
      r,
      {
        n: 8,
        accuracy: 5 / 8,
        accuracy_sampled: 5 / 8, // every random step of this model leads to the greedy answer
        accuracy_direct: 4 / 8,
        accuracy_forced: 3 / 8,
        trace_rate: 6 / 8,
        trace_len_mean: (0 + 0 + 2 + 2 + 1 + 1 + 4 + 1) / 8,
        // pooled over the 11 greedy trace tokens: `=` after d (H 0), `8` after `=` (H(0.9, 0.1)), `,` after 1
        trace_entropy: (2 * H([0.9, 0.1]) + H([0.6, 0.4]) + 8 * zeroH) / 11,
        decision_entropy: (2 * h(0.8) + h(0.4)) / 8,
      },
      "all",
    );
    expect(Object.keys(r.by_k)).toEqual(["3", "4", "5", "6", "?"]);
    const k = r.by_k;
    expectMetrics(
      k["3"],
      {
        n: 2,
        accuracy: 0.5,
        accuracy_sampled: 0.5,
        accuracy_direct: 0.5,
        accuracy_forced: 0.5,
        trace_rate: 0,
        trace_len_mean: 0,
        trace_entropy: 0,
        decision_entropy: h(0.8),
      },
      "k=3",
    );
    expectMetrics(
      k["4"],
      {
        n: 2,
        accuracy: 0.5,
        accuracy_sampled: 0.5,
        accuracy_direct: 0,
        accuracy_forced: 0.5,
        trace_rate: 1,
        trace_len_mean: 2,
        trace_entropy: H([0.9, 0.1]) / 2,
        decision_entropy: 0,
      },
      "k=4",
    );
    expectMetrics(
      k["5"],
      {
        n: 2,
        accuracy: 0.5,
        accuracy_sampled: 0.5,
        accuracy_direct: 0.5,
        accuracy_forced: 0.5,
        trace_rate: 1,
        trace_len_mean: 1,
        trace_entropy: 0,
        decision_entropy: 0,
      },
      "k=5",
    );
    expectMetrics(
      k["6"],
      {
        n: 1,
        accuracy: 1,
        accuracy_sampled: 1,
        accuracy_direct: 1,
        accuracy_forced: 0,
        trace_rate: 1,
        trace_len_mean: 4,
        trace_entropy: 0,
        decision_entropy: 0,
      },
      "k=6",
    );
    expectMetrics(
      k["?"],
      {
        n: 1,
        accuracy: 1,
        accuracy_sampled: 1,
        accuracy_direct: 1,
        accuracy_forced: 0,
        trace_rate: 1,
        trace_len_mean: 1,
        trace_entropy: H([0.6, 0.4]),
        decision_entropy: h(0.4),
      },
      "?",
    );
  });

  it("records how each trace ended and what was answered", () => {
    const r = evaluate(loaded, records, { maxTraceTokens: 4, samples: 8 });
    const q = r.questions;
    expect(q.map((x) => x.free.traceText)).toEqual(["", "", "=8", "=8", " ", " ", "gggg", ","]);
    expect(q.map((x) => x.free.end)).toEqual([
      "answer_start",
      "answer_start",
      "answer_start",
      "answer_start",
      "special",
      "special",
      "limit",
      "answer_start",
    ]);
    expect(q.map((x) => x.free.prediction)).toEqual(["5", "5", "7", "7", "7", "7", "5", "5"]);
    expect(q.map((x) => x.direct.prediction)).toEqual(Array(8).fill("5"));
    expect(q.map((x) => x.direct.end)).toEqual(Array(8).fill("none"));
    expect(q.map((x) => x.forced.traceText)).toEqual(Array(8).fill("b=8"));
    expect(q.map((x) => x.forced.prediction)).toEqual(Array(8).fill("7"));
    expect(q.every((x) => x.free.eos && x.direct.eos && x.forced.eos)).toBe(true);
    expect(q.map((x) => x.k)).toEqual([3, 3, 4, 4, 5, 5, 6, null]);
    // samples: one per k in turn, "?" last
    expect(r.samples.map((s) => s.question)).toEqual([0, 2, 4, 6, 7, 1, 3, 5].map((i) => DATA[i].question));
    expect(r.samples[1]).toMatchObject({ trace: "=8", predicted: "7", reference: "7", correct: true });
  });

  it("counts forced tokens against the trace limit, and cuts free traces at it", () => {
    const r = evaluate(loaded, records, { maxTraceTokens: 2 });
    expect(r.questions.map((x) => x.forced.traceText)).toEqual(Array(8).fill("b="));
    expect(r.questions.map((x) => x.forced.end)).toEqual(Array(8).fill("limit"));
    expect(r.questions[6].free.traceText).toBe("gg");
    expect(r.questions[2].free.end).toBe("limit"); // "=8" fills the limit before ⟨answer_start⟩
    expect(r.trace_len_mean).toBeCloseTo((2 + 2 + 1 + 1 + 2 + 1) / 8, 6);
    expect(r.accuracy_forced).toBeCloseTo(3 / 8, 6); // "b=" holds a marker: still "7"
    const one = evaluate(loaded, records.slice(0, 1), { maxTraceTokens: 1 }).questions[0].forced;
    expect(one).toMatchObject({ traceText: "b", end: "limit", prediction: "5" }); // "b" is no marker
  });

  it("counts an answer right only when it ends on ⟨eos⟩ and matches exactly", () => {
    const q = DATA[0].question; // direct and free answer: "5" ⟨eos⟩
    const r = evaluate(
      loaded,
      ["5", "55", " 5", "5 ", "7"].map((answer, i) => ({ question: q, answer, line: i + 1 })),
      { maxTraceTokens: 4 },
    );
    expect(r.questions.map((x) => x.direct.correct)).toEqual([true, false, false, false, false]);
    // a model that never ends its answer: "5" repeats up to the answer limit, which is never right
    const looping = loadModel(tinyModelDir({ ...BIGRAM, "5": { "5": 1 } }));
    const l = evaluate(looping, [{ question: q, answer: "55", line: 1 }], { maxTraceTokens: 4, maxAnswerTokens: 3 });
    expect(l.questions[0].direct).toMatchObject({ prediction: "555", eos: false, correct: false });
    expect(l.accuracy_direct).toBe(0);
  });

  it("bins answer tokens by their probability with no trace (hard-token analysis)", () => {
    const r = evaluate(loaded, records, { maxTraceTokens: 4 });
    // p(first answer token | ⟨answer_start⟩, no trace) = 0.8 ("5"), 0.15 ("3"), 0.05 ("7"); ⟨eos⟩ after it: 1.
    // After a greedy trace with a marker (questions 3–6) the first token's probability is ≈ 1 for "7", ≈ 0 otherwise.
    const bins = r.hard_tokens.map((b) => [b.bin, b.count, b.mean_p_no_trace, b.mean_p_after_trace]);
    const want = [
      ["[0,0.1)", 3, 0.05, (0.05 + 1 + 1) / 3], // "7" in questions 2 (no trace), 3, 5
      ["[0.1,0.3)", 1, 0.15, 0], // "3" in question 4
      ["[0.3,0.6)", 0, null, null],
      ["[0.6,0.9)", 4, 0.8, (0.8 + 0 + 0.8 + 0.8) / 4], // "5" in questions 1, 6 (after " "), 7 ("gggg"), 8 (",")
      ["[0.9,1]", 8, 1, 1], // ⟨eos⟩
    ];
    expect(bins.map((b) => [b[0], b[1]])).toEqual(want.map((b) => [b[0], b[1]]));
    bins.forEach((b, i) => {
      for (const j of [2, 3]) {
        if (want[i][j] === null) expect(b[j]).toBeNull();
        else expect(b[j] as number, `${b[0]} column ${j}`).toBeCloseTo(want[i][j] as number, 5);
      }
    });
    expect(r.questions[0].pAnswerStart).toBeCloseTo(0.8, 6);
    expect(r.questions[7].pAnswerStart).toBeCloseTo(0.4, 6);
    expect(r.by_k["4"].hard_tokens[0]).toMatchObject({ count: 1, mean_p_no_trace: expect.closeTo(0.05, 5) });
  });

  it("samples traces at temperature 1 with the given seed", () => {
    // k=8 (`h`): the greedy trace " " gives "7" (right); a sampled trace is " " with p = 0.7, else no trace → "5"
    const n = 200;
    const many = Array.from({ length: n }, (_, i) => ({
      question: "a1,b+1,c+1,d+1,e+1,f+1,g+1,h+1;h",
      answer: "7",
      line: i + 1,
    }));
    const a = evaluate(loaded, many, { maxTraceTokens: 4, seed: 1 });
    expect(a.accuracy).toBe(1);
    expect(a.accuracy_direct).toBe(0);
    expect(Math.abs(a.accuracy_sampled - 0.7)).toBeLessThan(0.1); // 3σ = 0.097
    expect(a.decision_entropy).toBeCloseTo(h(0.3), 5);
    const sampledTraces = (r: typeof a) => r.questions.map((q) => q.sampled.traceText).join("|");
    expect(sampledTraces(evaluate(loaded, many, { maxTraceTokens: 4, seed: 1 }))).toBe(sampledTraces(a));
    expect(sampledTraces(evaluate(loaded, many, { maxTraceTokens: 4, seed: 2 }))).not.toBe(sampledTraces(a));
  });

  it("formats the tables", () => {
    const r = evaluate(loaded, records, { maxTraceTokens: 4, samples: 2 });
    const t = formatEvalTable(r);
    expect(t.split("\n")).toHaveLength(1 + 5 + 1);
    expect(t).toMatch(/^all\s+8\s+62\.5\s+62\.5\s+50\.0\s+37\.5\s+75\.0\s+1\.4/m);
    expect(formatHardTokens(r.hard_tokens)).toMatch(/\[0,0\.1\)\s+3\s+0\.050\s+0\.683/);
    expect(formatSamples(r.samples)).toContain('trace "=8" → "7" ✓');
  });
});
