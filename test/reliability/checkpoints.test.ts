/**
 * Issue 9, list 2, through the library: the states a kill can leave a run directory in, made by hand, and what
 * `--resume` does with each. Every resumed run must end with exactly the uninterrupted run's metrics.
 */
import { appendFileSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NrtError } from "../../src/errors.js";
import { latestCheckpoint } from "../../src/train/checkpoint.js";
import { train } from "../../src/train/trainer.js";
import { config, metrics, setup, snapshot, withoutTiming } from "./_setup.js";

const s = setup("nrt-ckpt-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

const STEPS = 8;
const cfg = (out: string, over: Record<string, unknown> = {}) =>
  config({ model: s.model, data: s.data, out, steps: STEPS, checkpointEvery: 2, ...over });

let reference: Record<string, number>[];
beforeAll(() => {
  const out = join(s.dir, "reference");
  train(cfg(out));
  reference = metrics(out).map(withoutTiming);
});

/** Trains `out` until step `at` and stops there as if killed: the metrics hold `at` lines, checkpoints what they hold. */
function crashAt(out: string, at: number, over: Record<string, unknown> = {}): void {
  expect(() =>
    train(cfg(out, over), {
      onStep: (_m, step) => {
        if (step === at) throw new Error("simulated kill");
      },
    }),
  ).toThrow("simulated kill");
}

const stepDirs = (out: string) =>
  readdirSync(join(out, "checkpoints"))
    .filter((d) => d !== "latest")
    .sort();

describe("resume after a kill at an awkward moment", () => {
  it("during the append of a metrics line: the torn line is dropped", () => {
    const out = join(s.dir, "torn");
    crashAt(out, 5); // checkpoint at 4, metrics 1–5
    appendFileSync(join(out, "metrics.jsonl"), '{"step":6,"loss":0.12'); // step 6's line, cut short
    train(cfg(out), {}, true);
    expect(metrics(out).map(withoutTiming)).toEqual(reference);
  });

  it("a damaged metrics line before the end is an error naming file:line, and nothing is changed", () => {
    const out = join(s.dir, "damaged");
    crashAt(out, 5);
    const p = join(out, "metrics.jsonl");
    const lines = readFileSync(p, "utf8").split("\n");
    lines[1] = lines[1].slice(0, 10);
    writeFileSync(p, lines.join("\n"));
    const before = snapshot(out);
    expect(() => train(cfg(out), {}, true)).toThrow(NrtError);
    expect(() => train(cfg(out), {}, true)).toThrow(`${p}:2: malformed metrics line`);
    expect(snapshot(out)).toEqual(before);
  });

  it("after a checkpoint directory was written but before `latest` moved to it (keep 1)", () => {
    const out = join(s.dir, "unmarked");
    crashAt(out, 3, { keepCheckpoints: 1 }); // latest = step 2
    // the kill left step 4's directory complete but `latest` still naming step 2 (a copy stands in for it)
    cpSync(join(out, "checkpoints", "step-000002"), join(out, "checkpoints", "step-000004"), { recursive: true });
    expect(latestCheckpoint(out)!.state.step).toBe(2);
    // resumed, then stopped (Ctrl-C) at step 3: that checkpoint is the latest and must survive the pruning
    let stopAt3 = false;
    train(
      cfg(out, { keepCheckpoints: 1 }),
      {
        onStep: (_m, st) => {
          stopAt3 = st === 3;
        },
        shouldStop: () => stopAt3,
      },
      true,
    );
    expect(latestCheckpoint(out)!.state.step).toBe(3);
    expect(stepDirs(out)).toEqual(["step-000003"]);
    train(cfg(out, { keepCheckpoints: 1 }), {}, true);
    expect(metrics(out).map(withoutTiming)).toEqual(reference);
  });

  it("during a checkpoint write: the .tmp-/.old- leftovers are removed by the next checkpoint", () => {
    const out = join(s.dir, "leftovers");
    crashAt(out, 3);
    const ck = join(out, "checkpoints");
    mkdirSync(join(ck, "step-000004.tmp-999-0badf00d"));
    writeFileSync(join(ck, "step-000004.tmp-999-0badf00d", "config.json"), "{");
    cpSync(join(ck, "step-000002"), join(ck, "step-000002.old-999-0badf00d"), { recursive: true });
    writeFileSync(join(ck, ".latest.tmp-999-0badf00d"), "step-0000");
    train(cfg(out), {}, true);
    expect(stepDirs(out)).toEqual(["step-000006", "step-000008"]);
    expect(metrics(out).map(withoutTiming)).toEqual(reference);
  });

  it("before the first checkpoint: the run starts over", () => {
    const out = join(s.dir, "early");
    crashAt(out, 1);
    expect(latestCheckpoint(out)).toBeNull();
    train(cfg(out), {}, true);
    expect(metrics(out).map(withoutTiming)).toEqual(reference);
  });
});
