import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "./paths.js";

/** One `nrt train` run to execute as a child process. */
export interface RunSpec {
  name: string;
  outDir: string;
  args: string[];
  steps: number;
}

export interface RunOutcome {
  name: string;
  seconds: number;
  code: number;
  stderr: string;
}

/**
 * A one-thread `nrt train` run of `method` from `base` on `data` into `outDir`, checkpointed only at the end;
 * `termGradNorms` logs each loss term's gradient norm on the sample steps (for the experiment's mechanism table).
 */
export function trainRunSpec(
  name: string,
  o: {
    base: string;
    data: string;
    outDir: string;
    method: string;
    steps: number;
    seed: number;
    termGradNorms?: boolean;
  },
): RunSpec {
  return {
    name,
    outDir: o.outDir,
    steps: o.steps,
    args: [
      ...["--model", o.base, "--data", o.data, "--out", o.outDir, "--method", o.method],
      ...["--steps", String(o.steps), "--seed", String(o.seed), "--checkpoint-every", String(o.steps)],
      ...["--threads", "1", "--progress", "false"],
      ...(o.termGradNorms ? ["--term-grad-norms", "true"] : []),
    ],
  };
}

/** Steps a run has logged so far (lines of its metrics.jsonl). */
function stepsDone(outDir: string): number {
  const p = join(outDir, "metrics.jsonl");
  if (!existsSync(p)) return 0;
  return readFileSync(p, "utf8")
    .split("\n")
    .filter((l) => l.trim()).length;
}

/**
 * Runs `nrt train` child processes, at most `parallel` at a time (one compute thread each), calling `onTick`
 * with each run's progress about once a second.
 */
export async function runParallel(
  specs: RunSpec[],
  parallel: number,
  onTick: (status: { name: string; done: number; steps: number; finished: boolean }[]) => void,
): Promise<RunOutcome[]> {
  const bin = join(packageRoot(), "bin", "nrt.js");
  const outcomes: RunOutcome[] = [];
  const finished = new Set<string>();
  const queue = [...specs];
  const tick = setInterval(
    () =>
      onTick(
        specs.map((s) => ({ name: s.name, done: stepsDone(s.outDir), steps: s.steps, finished: finished.has(s.name) })),
      ),
    1000,
  );
  const runOne = (s: RunSpec): Promise<void> =>
    new Promise((resolve) => {
      const t0 = Date.now();
      const child = spawn(process.execPath, [bin, "train", ...s.args], { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr.on("data", (d: Buffer) => {
        err = (err + d.toString()).slice(-4000);
      });
      child.on("close", (code) => {
        finished.add(s.name);
        outcomes.push({ name: s.name, seconds: (Date.now() - t0) / 1000, code: code ?? 1, stderr: err });
        resolve();
      });
    });
  const workers = Array.from({ length: Math.max(1, parallel) }, async () => {
    for (let s = queue.shift(); s; s = queue.shift()) await runOne(s);
  });
  try {
    await Promise.all(workers);
  } finally {
    clearInterval(tick);
  }
  return specs.map((s) => outcomes.find((o) => o.name === s.name) as RunOutcome);
}
