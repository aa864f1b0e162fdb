/**
 * Issue 9, list 3: a non-finite loss, gradient or reward stops the run naming the step, the batch and the
 * quantity, with the last good checkpoint intact; `--on-nan skip` skips the batch instead and counts it.
 * A learning rate of 1e30 makes the weights after step 1 so large that step 2's logits overflow.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { NrtError } from "../../src/errors.js";
import { loadModelDir } from "../../src/io/model-dir.js";
import { latestCheckpoint } from "../../src/train/checkpoint.js";
import { train } from "../../src/train/trainer.js";
import { config, metrics, nrt, setup, snapshot, TINY_FLAGS } from "./_setup.js";

const s = setup("nrt-nan-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

const cfg = (out: string, over: Record<string, unknown>) =>
  config({ model: s.model, data: s.data, out, steps: 4, checkpointEvery: 1, lr: 1e30, ...over });

/** Runs `f` with stderr captured. */
function stderrOf(f: () => void): string {
  const chunks: string[] = [];
  const spy = vi.spyOn(process.stderr, "write").mockImplementation((c: string | Uint8Array) => {
    chunks.push(String(c));
    return true;
  });
  try {
    f();
  } finally {
    spy.mockRestore();
  }
  return chunks.join("");
}

const BATCH = /\(batch: questions at lines \d+, \d+, \d+\)/;

describe("--on-nan stop (the default)", () => {
  for (const [method, quantity] of [
    ["sft", /non-finite loss \((NaN|-?Infinity)\)/],
    ["nrt-ws", /non-finite (reward or advantage \(.+\)|loss|gradient norm)/],
  ] as const) {
    it(`${method}: stops at step 2 naming the batch and the quantity; checkpoint 1 stays intact`, () => {
      const out = join(s.dir, `stop-${method}`);
      let err: unknown;
      try {
        train(cfg(out, { method }));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NrtError);
      const msg = (err as Error).message;
      expect(msg).toMatch(`${out}: step 2: `);
      expect(msg).toMatch(quantity);
      expect(msg).toMatch(BATCH);
      expect(msg).toMatch("stopped, the last checkpoint is intact");
      expect(metrics(out)).toHaveLength(1);
      const ckpt = latestCheckpoint(out)!;
      expect(ckpt.state.step).toBe(1);
      loadModelDir(ckpt.dir); // loads: every weight finite, every tensor in place
      // resuming from it is deterministic: the same stop at the same step, and the checkpoint untouched
      const before = snapshot(join(out, "checkpoints"));
      expect(() => train(cfg(out, { method }), {}, true)).toThrow(msg);
      expect(snapshot(join(out, "checkpoints"))).toEqual(before);
    });
  }

  it("through the CLI: exit 2 with the message, no stack trace", () => {
    const out = join(s.dir, "stop-cli");
    const r = nrt([
      "train",
      "--model",
      s.model,
      "--data",
      s.data,
      "--out",
      out,
      "--steps",
      "3",
      ...TINY_FLAGS,
      "--lr",
      "1e30",
      "--method",
      "sft",
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/nrt: error: .+: step 2: non-finite loss/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("--on-nan skip", () => {
  it("skips each bad batch with a warning naming it, counts them, checkpoints and finishes", () => {
    const out = join(s.dir, "skip");
    let result: ReturnType<typeof train> | undefined;
    const err = stderrOf(() => {
      result = train(cfg(out, { method: "sft", onNan: "skip" }));
    });
    expect(result!.stopped).toBe("done");
    for (const step of [2, 3, 4]) expect(err).toMatch(new RegExp(`warning: .*step ${step}: non-finite loss`));
    expect(err).toMatch(BATCH);
    expect(err).toMatch("batch skipped (3 so far)");
    expect(err).toMatch("warning: 3 batch(es) skipped for non-finite values");
    expect(metrics(out).map((m) => m.step)).toEqual([1]); // skipped steps write no metrics line
    const ckpt = latestCheckpoint(out)!;
    expect(ckpt.state.step).toBe(4); // the step counter still advances and checkpoints are still written
    expect(ckpt.state.nanSkipped).toBe(3);
    expect(JSON.parse(readFileSync(join(ckpt.dir, "trainer_state.json"), "utf8")).nanSkipped).toBe(3);
    loadModelDir(join(out, "final"));
  });

  it("a skipped batch still lets the run stop on request", () => {
    const out = join(s.dir, "skip-stop");
    let result: ReturnType<typeof train> | undefined;
    stderrOf(() => {
      let calls = 0;
      result = train(cfg(out, { method: "sft", onNan: "skip", steps: 10, checkpointEvery: 5 }), {
        shouldStop: () => ++calls >= 3,
      });
    });
    expect(result!.stopped).toBe("interrupted");
    expect(result!.steps).toBe(3);
    expect(latestCheckpoint(out)!.state).toMatchObject({ step: 3, nanSkipped: 2 });
  });
});
