/**
 * A run directory's run_config.json: the settings it was started with (and what of them `--resume` may change),
 * the data file's digest, the versions that trained it; and its metrics.jsonl, cut back to a checkpoint.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { keysWith } from "../config/schema.js";
import { type TrainConfig, trainFields } from "../config/train-config.js";
import { NrtError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { packageRoot } from "../util/package-root.js";
import type { DataDigest } from "./data-check.js";

/** Keys whose change does not alter a run, so `--resume` may be given them anew (`resumable` in the schema). */
const RESUME_FREE = keysWith(trainFields, (f) => f.resumable === true);

/** Refuses a resumed run's settings that differ from the run's own (`saved`), except those of RESUME_FREE. */
export function checkResumeSettings(saved: Record<string, unknown>, cfg: TrainConfig, out: string): void {
  for (const [k, v] of Object.entries(cfg)) {
    if (RESUME_FREE.has(k) || JSON.stringify(saved[k]) === JSON.stringify(v)) continue;
    throw new NrtError(`--resume: ${k} was ${JSON.stringify(saved[k])} in this run, now ${JSON.stringify(v)}`, out);
  }
  if ((saved.steps as number) > cfg.steps)
    throw new NrtError(`--resume: steps may only grow (was ${saved.steps})`, out);
}

/** RUN/run_config.json: the saved settings and, where recorded, the data file's digest. */
export function readRunConfig(path: string): { train: Record<string, unknown>; data?: DataDigest } {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new NrtError(`cannot read the run's settings (${(e as Error).message})`, path);
  }
  const o = json as { train?: unknown; data?: DataDigest };
  if (typeof o?.train !== "object" || o.train === null) throw new NrtError(`no "train" settings`, path);
  return { train: o.train as Record<string, unknown>, data: o.data };
}

/**
 * Keeps the lines of steps ≤ lastStep, replacing the file atomically (a kill here must not lose the metrics). A
 * line that does not parse is a write torn by a kill if it is the last one (always after the checkpoint: a step's
 * line is appended before its checkpoint is written) and is dropped; anywhere else it is an error.
 */
export function truncateMetrics(path: string, lastStep: number): void {
  if (!existsSync(path)) return;
  const lines = readFileSync(path, "utf8").split("\n");
  const keep: string[] = [];
  for (const [i, l] of lines.entries()) {
    if (!l.trim()) continue;
    let step: unknown;
    try {
      step = (JSON.parse(l) as { step?: unknown }).step;
    } catch {
      if (lines.slice(i + 1).every((r) => !r.trim())) break;
      throw new NrtError("malformed metrics line", `${path}:${i + 1}`);
    }
    if (typeof step === "number" && step <= lastStep) keep.push(`${l}\n`);
  }
  writeFileAtomic(path, keep.join(""));
}

/** nrt's version, Node's, and the installed versions of nrt's runtime dependencies, for run_config.json. */
export function versions(): Record<string, string> {
  const root = packageRoot();
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    version: string;
    dependencies?: Record<string, string>;
  };
  const out: Record<string, string> = {
    nrt: pkg.version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
  for (const dep of Object.keys(pkg.dependencies ?? {})) {
    try {
      out[dep] = (
        JSON.parse(readFileSync(join(root, "node_modules", dep, "package.json"), "utf8")) as { version: string }
      ).version;
    } catch {
      out[dep] = "not found";
    }
  }
  return out;
}
