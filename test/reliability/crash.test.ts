/**
 * Issue 9, lists 2 and 4: `kill -9` at random moments leaves a run that `--resume` continues from an intact
 * checkpoint, and the finished run's metrics and final weights equal an uninterrupted run's; SIGINT and SIGTERM
 * finish the step, write a checkpoint and exit 0 with the command that resumes.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModelDir } from "../../src/io/model-dir.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { latestCheckpoint } from "../../src/train/checkpoint.js";
import { metrics, nrt, nrtSpawn, setup, TINY_FLAGS, withoutTiming } from "./_setup.js";

const s = setup("nrt-crash-");
afterAll(() => rmSync(s.dir, { recursive: true, force: true }));

const STEPS = 60;
const KEEP = 2;
const trainArgs = (out: string) => [
  "train",
  "--model",
  s.model,
  "--data",
  s.data,
  "--out",
  out,
  "--steps",
  String(STEPS),
  "--checkpoint-every",
  "3",
  "--keep-checkpoints",
  String(KEEP),
  ...TINY_FLAGS,
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** Polls `pred` every millisecond until it holds (true) or `ms` pass (false). */
async function waitFor(pred: () => boolean, ms = 60_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(1);
  }
  return false;
}

/** Metrics lines as a kill may leave them: a torn last line is not a step. */
function metricsSoFar(out: string): Record<string, number>[] {
  const p = join(out, "metrics.jsonl");
  if (!existsSync(p)) return [];
  const lines = readFileSync(p, "utf8")
    .split("\n")
    .filter((l) => l.trim());
  const rows: Record<string, number>[] = [];
  for (const [i, l] of lines.entries()) {
    try {
      rows.push(JSON.parse(l));
    } catch (e) {
      if (i < lines.length - 1) throw e; // only the last line may be torn
    }
  }
  return rows;
}

let reference: Record<string, number>[];
let referenceWeights: Buffer;

beforeAll(() => {
  const ref = join(s.dir, "reference");
  const r = nrt(trainArgs(ref));
  expect(r.status, r.stderr).toBe(0);
  reference = metrics(ref).map(withoutTiming);
  expect(reference).toHaveLength(STEPS);
  referenceWeights = readFileSync(join(ref, "final", "model.safetensors"));
});

/**
 * The run's latest checkpoint is complete and agrees with the uninterrupted run: it loads as a model directory,
 * its AdamW moments read, and the metrics up to its step are the reference's. Returns its step (0: none yet).
 */
function checkIntact(out: string, why: string): number {
  const ckpt = latestCheckpoint(out);
  const rows = metricsSoFar(out);
  if (!ckpt) {
    const ck = join(out, "checkpoints");
    expect(existsSync(ck) ? readdirSync(ck).filter((d) => /^step-\d{6}$/.test(d)) : [], why).toEqual([]);
    return 0;
  }
  const step = ckpt.state.step;
  expect(loadModelDir(ckpt.dir).config.numLayers, why).toBe(2);
  expect(readSafetensors(join(ckpt.dir, "optimizer.safetensors")).tensors.size, why).toBe(2);
  expect(rows.length, why).toBeGreaterThanOrEqual(step);
  expect(rows.slice(0, step).map(withoutTiming), why).toEqual(reference.slice(0, step));
  return step;
}

/** After the run completes: the reference's metrics step for step, its final weights bit for bit, no leftovers. */
function checkFinished(out: string): void {
  expect(metrics(out).map(withoutTiming)).toEqual(reference);
  expect(readFileSync(join(out, "final", "model.safetensors")).equals(referenceWeights)).toBe(true);
  const left = readdirSync(join(out, "checkpoints")).sort();
  expect(left.filter((d) => d !== "latest" && !/^step-\d{6}$/.test(d))).toEqual([]); // no .tmp-/.old- leftovers
  expect(left.length).toBeLessThanOrEqual(KEEP + 1);
  expect(readdirSync(out).filter((d) => d.includes(".tmp-") || d.includes(".old-"))).toEqual([]);
}

describe("kill -9 at random moments", () => {
  it("every resume continues from an intact checkpoint; the finished run equals an uninterrupted one", async () => {
    const out = join(s.dir, "killed");
    const log: string[] = [];
    let ckptStep = 0;
    for (let kill = 0; kill < 6; kill++) {
      const fresh = !existsSync(join(out, "run_config.json"));
      const t0 = Date.now();
      const p = nrtSpawn(fresh ? trainArgs(out) : ["train", "--resume", out]);
      let exited = false;
      p.done.then(() => {
        exited = true;
      });
      let moment: string;
      if (kill === 4) {
        // aim at a checkpoint write: kill as soon as a temporary checkpoint directory shows up
        const ck = join(out, "checkpoints");
        const hit = await waitFor(
          () => exited || (existsSync(ck) && readdirSync(ck).some((d) => d.includes(".tmp-"))),
          20_000,
        );
        moment = hit ? "during a checkpoint write" : "after 20 s";
      } else {
        // after a random number of new steps (past startup), plus a random few milliseconds
        const target = ckptStep + randInt(1, 10);
        const metricsPath = join(out, "metrics.jsonl");
        await waitFor(
          () =>
            exited ||
            (existsSync(metricsPath) && statSync(metricsPath).mtimeMs >= t0 && metricsSoFar(out).length >= target),
        );
        const jitter = randInt(0, 15);
        await sleep(jitter);
        moment = `at ≥ step ${target} + ${jitter} ms`;
      }
      p.kill("SIGKILL");
      const r = await p.done;
      const why = `kill ${kill} (${moment}); earlier: ${log.join("; ")}; stderr: ${r.stderr}`;
      expect(r.signal === "SIGKILL" || r.status === 0, why).toBe(true);
      const step = checkIntact(out, why);
      expect(step, `the last checkpoint never moves back: ${why}`).toBeGreaterThanOrEqual(ckptStep);
      ckptStep = step;
      log.push(`kill ${kill} ${moment}: ${metricsSoFar(out).length} metrics lines, checkpoint ${step}`);
      if (r.status === 0) break; // finished before the kill landed
    }
    const r = nrt(["train", "--resume", out]);
    expect(r.status, `${log.join("; ")}\n${r.stderr}`).toBe(0);
    checkFinished(out);
  });
});

describe("SIGINT and SIGTERM", () => {
  it("finish the step, write a checkpoint, exit 0 saying how to resume; the resumed run equals an uninterrupted one", async () => {
    const out = join(s.dir, "interrupted");
    for (const [signal, args] of [
      ["SIGINT", trainArgs(out)],
      ["SIGTERM", ["train", "--resume", out]],
    ] as const) {
      const before = metricsSoFar(out).length;
      const t0 = Date.now();
      const p = nrtSpawn([...args]);
      const metricsPath = join(out, "metrics.jsonl");
      await waitFor(
        () => existsSync(metricsPath) && statSync(metricsPath).mtimeMs >= t0 && metricsSoFar(out).length >= before + 4,
      );
      p.kill(signal);
      const r = await p.done;
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch("interrupt: finishing this step, then writing a checkpoint");
      const m = /stopped after step (\d+); continue with: nrt train --resume (.+)\n/.exec(r.stderr);
      expect(m, r.stderr).not.toBeNull();
      expect(m![2]).toBe(out);
      const step = Number(m![1]);
      expect(step).toBeLessThan(STEPS);
      expect(latestCheckpoint(out)!.state.step).toBe(step); // a checkpoint of the step it stopped at
      expect(metrics(out)).toHaveLength(step);
      expect(checkIntact(out, signal)).toBe(step);
      expect(existsSync(join(out, "final"))).toBe(false);
    }
    const r = nrt(["train", "--resume", out]);
    expect(r.status, r.stderr).toBe(0);
    checkFinished(out);
  });
});
