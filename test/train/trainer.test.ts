import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { resolveFields } from "../../src/config/schema.js";
import { type TrainConfig, trainFields } from "../../src/config/train-config.js";
import { shippedBase } from "../../src/demo/paths.js";
import { train } from "../../src/train/trainer.js";
import { generate, toJsonl } from "../../src/world/chain.js";
import { runMetrics, setup, tinyConfig, withoutTiming } from "../helpers/tiny-run.js";

describe("nrt train", () => {
  const s = setup();

  // On a toy task a random model learns the answers with or without a trace, so b rises with c and the
  // ws_nlog weights −log b fall: its reward is not monotone here (test/demo checks NRT-WS on a reasoning base).
  // The GM reward is monotone in c, and every NRT variant must raise the answer's likelihood after the traces.
  test.each([
    ["nrt-gm", "reward/mean"],
    ["nrt-ws", "answer/c_mean"],
  ])("a %s run raises %s", (method, key) => {
    const out = join(s.dir, `rise-${method}`);
    train(tinyConfig({ model: s.model, data: s.data, out, steps: 40, method }));
    const m = runMetrics(out);
    expect(m).toHaveLength(40);
    const avg = (xs: Record<string, number>[]) => xs.reduce((a, x) => a + x[key], 0) / xs.length;
    expect(avg(m.slice(-5))).toBeGreaterThan(avg(m.slice(0, 5)) * 1.5);
    for (const x of m) expect(Number.isFinite(x.loss)).toBe(true);
  });

  test("the same seed gives identical metrics; resuming after a crash gives the uninterrupted run's metrics", () => {
    const a = join(s.dir, "a");
    const b = join(s.dir, "b");
    const c = join(s.dir, "c");
    train(tinyConfig({ model: s.model, data: s.data, out: a, steps: 10, checkpointEvery: 4 }));
    train(tinyConfig({ model: s.model, data: s.data, out: b, steps: 10, checkpointEvery: 4 }));
    expect(runMetrics(b).map(withoutTiming)).toEqual(runMetrics(a).map(withoutTiming));
    // crash during step 7's bookkeeping: metrics hold 7 steps, the last checkpoint is step 4
    expect(() =>
      train(tinyConfig({ model: s.model, data: s.data, out: c, steps: 10, checkpointEvery: 4 }), {
        onStep: (_m, step) => {
          if (step === 7) throw new Error("simulated crash");
        },
      }),
    ).toThrow("simulated crash");
    expect(runMetrics(c)).toHaveLength(7);
    train(tinyConfig({ model: s.model, data: s.data, out: c, steps: 10, checkpointEvery: 4 }), {}, true);
    expect(runMetrics(c).map(withoutTiming)).toEqual(runMetrics(a).map(withoutTiming));
  });

  test("sft and every preset run; a different seed gives different metrics", () => {
    for (const method of ["sft", "rlpr", "verifree", "jlb", "nrt-gm"]) {
      const out = join(s.dir, `m-${method}`);
      train(tinyConfig({ model: s.model, data: s.data, out, steps: 2, method }));
      expect(runMetrics(out)).toHaveLength(2);
    }
    const d = join(s.dir, "d");
    train(tinyConfig({ model: s.model, data: s.data, out: d, steps: 3, seed: 5 }));
    const a = runMetrics(join(s.dir, "a")).slice(0, 3).map(withoutTiming);
    expect(runMetrics(d).map(withoutTiming)).not.toEqual(a);
  });
});

describe("nrt train on the shipped chain2 base", () => {
  // The reasoning task NRT is for: the base answers hard questions poorly at once but well after a trace, so
  // NRT-WS's reward (hard answer tokens weigh −log b) rises as the model learns to reason.
  test("an nrt-ws run raises the mean reward", () => {
    const dir = mkdtempSync(join(tmpdir(), "nrt-base-"));
    const data = join(dir, "train.jsonl");
    writeFileSync(data, toJsonl(generate({ world: "chain2", split: "train", n: 4000, k: [3, 6], seed: 1 })));
    const out = join(dir, "run");
    train(
      resolveFields(
        trainFields,
        undefined,
        { model: shippedBase("chain2"), data, out, steps: 40, progress: false, threads: 1, seed: 0 },
        "test",
      ) as TrainConfig,
    );
    const m = runMetrics(out);
    const avg = (xs: Record<string, number>[], k: string) => xs.reduce((a, x) => a + x[k], 0) / xs.length;
    const [first, last] = [m.slice(0, 8), m.slice(-8)];
    expect(avg(last, "reward/mean")).toBeGreaterThan(1.3 * avg(first, "reward/mean"));
    expect(avg(last, "trace/rate")).toBeGreaterThan(avg(first, "trace/rate") + 0.3);
  });
});
