// SPEC §4's loss split by term: the term weights add up to the step's weights, the logged loss terms add up to the
// engine's loss, and each term's gradient norm is the norm of that term's own gradient (checked by linearity).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { resolveFields } from "../../src/config/schema.js";
import { type TrainConfig, trainFields } from "../../src/config/train-config.js";
import { NativeEngine } from "../../src/engine/native.js";
import { llamaConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { native, setThreads } from "../../src/model/native.js";
import { type MethodPreset, methods, resolveObjective } from "../../src/nrt/methods.js";
import { lossTerms } from "../../src/train/metrics.js";
import { type QuestionGroup, scoreNrtBatch, termWeights } from "../../src/train/nrt-batch.js";
import { train } from "../../src/train/trainer.js";
import { setup, TINY } from "../helpers/tiny-run.js";

const GROUPS: QuestionGroup[] = [
  {
    prompt: [1, 5, 9],
    answer: [7, 2],
    traces: [
      { tokens: [4, 4, 6], emitted: true },
      { tokens: [8], emitted: false },
      { tokens: [4, 4, 6], emitted: true }, // shares the first trace's sequence
      { tokens: [], emitted: false },
    ],
  },
  {
    prompt: [1, 6],
    answer: [9, 11, 2],
    traces: [
      { tokens: [5], emitted: true },
      { tokens: [12, 13], emitted: false },
    ],
  },
];

describe("SPEC §4 terms", () => {
  let model: Model;
  beforeAll(() => {
    setThreads(1);
    const cfg = llamaConfig({
      vocabSize: 16,
      hiddenSize: 32,
      intermediateSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
    });
    model = Model.init(cfg, 5, 0.3);
  });

  it.each(["nrt-ws", "verifree", "rlpr"] as const)(
    "%s: term weights sum to the step's, and norms follow linearity",
    (m) => {
      const { sft: _, ...choice } = methods[m] as Extract<MethodPreset, { sft: false }>;
      const scored = scoreNrtBatch(model, GROUPS, resolveObjective(choice), 3);
      const t = termWeights(scored);
      for (let i = 0; i < scored.weights.length; i++)
        expect(t.trace[i] + t.answer[i] + t.format[i]).toBeCloseTo(scored.weights[i], 6);
      const terms = lossTerms(scored, t);
      const loss = model.runner.backward(scored.weights, model.zeros());
      expect(terms["loss/trace"] + terms["loss/answer"] + terms["loss/format"]).toBeCloseTo(loss, 5);

      const engine = new NativeEngine(model);
      const [nt, na, nf, nall, ntwice] = engine.gradNorms(scored.seqs, [
        t.trace,
        t.answer,
        t.format,
        scored.weights,
        t.trace.map((x) => 2 * x),
      ]);
      expect(ntwice).toBeCloseTo(2 * nt, 5); // the norm of a term's own gradient scales with it
      expect(nall).toBeLessThanOrEqual(nt + na + nf + 1e-6); // triangle inequality
      // the whole gradient's norm is what a step reports before clipping
      model.runner.forward(scored.seqs.tokens, scored.seqs.lens);
      const g = model.zeros();
      model.runner.backward(scored.weights, g);
      expect(nall).toBeCloseTo(native().gradNorm(g), 5);
      if (m === "rlpr")
        expect(na).toBe(0); // token_weight none: no answer term
      else expect(na).toBeGreaterThan(0);
    },
  );
});

describe("nrt train logs the terms' gradient norms on the logged steps", () => {
  const s = setup("nrt-terms-");
  it("on step 1 and every --samples-every steps, and nowhere else", () => {
    const out = join(s.dir, "run");
    const cfg = resolveFields(
      trainFields,
      undefined,
      { ...TINY, model: s.model, data: s.data, out, steps: 6, samplesEvery: 3, termGradNorms: true },
      "test",
    ) as TrainConfig;
    train(cfg);
    const lines = readFileSync(join(out, "metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const logged = lines.filter((l) => "grad_norm/trace" in l).map((l) => l.step);
    expect(logged).toEqual([1, 3, 6]);
    for (const l of lines.filter((x) => "grad_norm/trace" in x)) {
      for (const k of ["grad_norm/trace", "grad_norm/answer", "grad_norm/format"])
        expect(l[k]).toBeGreaterThanOrEqual(0);
      expect(l.grad_norm).toBeLessThanOrEqual(
        l["grad_norm/trace"] + l["grad_norm/answer"] + l["grad_norm/format"] + 1e-6,
      );
    }
  });
});
