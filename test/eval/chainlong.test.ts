// nrt eval on chainlong (SPEC §7) with the shipped base: answers are scored by their values in any phrasing,
// exact match is kept beside it, and the base reasons when forced to.
import { describe, expect, it } from "vitest";
import { shippedBase } from "../../src/demo/paths.js";
import { evaluate } from "../../src/eval/evaluate.js";
import { loadModel } from "../../src/io/load.js";
import { setThreads } from "../../src/model/native.js";
import { generate, longAnswerCorrect } from "../../src/world/chain.js";

describe("nrt eval on chainlong", () => {
  it("counts a free-phrased answer right by its values, exact match apart", () => {
    setThreads(1);
    const records = generate({ world: "chainlong", split: "eval", n: 24, k: [3, 6], seed: 5 }).map((r, i) => ({
      question: r.question,
      answer: r.answer,
      line: i + 1,
    }));
    const r = evaluate(loadModel(shippedBase("chainlong")), records, { seed: 0 });
    expect(r.n).toBe(24);
    for (const q of r.questions)
      for (const run of [q.free, q.sampled, q.direct, q.forced]) {
        expect(run.correct).toBe(run.eos && longAnswerCorrect(run.prediction, q.answer));
        expect(run.exact).toBe(run.eos && run.prediction === q.answer);
      }
    // the reference's phrasing is drawn at random: a model that states the right values often says them otherwise
    expect(r.accuracy).toBeGreaterThan(r.accuracy_exact);
    expect(r.accuracy_forced).toBeGreaterThanOrEqual(0.9); // the shipped base reasons well when forced to
    expect(r.trace_rate).toBeLessThanOrEqual(0.1); // and rarely by itself
    expect(Object.keys(r.by_k)).toEqual(["3", "4", "5", "6"]);
  });
});
