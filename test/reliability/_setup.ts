/** Shared fixtures of the reliability tests: a tiny model and QA file, the CLI, run-directory snapshots. */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { resolveFields } from "../../src/config/schema.js";
import { type TrainConfig, trainFields } from "../../src/config/train-config.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = join(ROOT, "bin", "nrt.js");

import { TINY, setup as tinySetup } from "../helpers/tiny-run.js";

export { QA_LINES, TINY } from "../helpers/tiny-run.js";

/** A fresh temp directory holding `model/` (tiny random Llama, char tokenizer) and `train.jsonl`. */
export function setup(prefix = "nrt-rel-"): { dir: string; model: string; data: string } {
  return tinySetup(prefix);
}

/** The same settings as `nrt train` flags. */
export const TINY_FLAGS = [
  "--progress",
  "false",
  "--threads",
  "1",
  "--group-size",
  "4",
  "--prompts-per-step",
  "3",
  "--max-trace-tokens",
  "8",
  "--lr",
  "3e-3",
];

export function config(over: Record<string, unknown>): TrainConfig {
  return resolveFields(trainFields, undefined, { ...TINY, ...over }, "test") as TrainConfig;
}

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/nrt.js ...args` (the built dist/) to completion. */
export function nrt(args: string[], cwd = ROOT): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: "utf8", timeout: 120_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `node bin/nrt.js ...args` without waiting; `done` resolves when it exits. */
export function nrtSpawn(args: string[]): { pid: number; kill: (s: NodeJS.Signals) => void; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const done = new Promise<CliResult>((res) =>
    child.on("close", (status, signal) => res({ status, signal, stdout, stderr })),
  );
  return { pid: child.pid!, kill: (s) => child.kill(s), done };
}

/** The lines of RUN/metrics.jsonl, parsed; a step without its timing fields. */
export { runMetrics as metrics, withoutTiming } from "../helpers/tiny-run.js";

/** Every file under `dir` with the sha256 of its bytes and its mtime: equal snapshots mean nothing was changed. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = statSync(p);
      if (st.isDirectory()) {
        out[`${r}/`] = "dir";
        walk(p, r);
      } else out[r] = `${createHash("sha256").update(readFileSync(p)).digest("hex")} ${st.mtimeMs}`;
    }
  };
  walk(dir, "");
  return out;
}

/** A stack trace in CLI output means an error escaped as a crash instead of a message. */
export const STACK = /\n\s+at .+:\d+:\d+/;

/** Scratch inputs in `s.dir`, each under a fresh name: a data file of lines (or raw bytes), a copy of the model. */
export function scratch(s: { dir: string; model: string }) {
  let n = 0;
  return {
    dataFile(content: string[] | Uint8Array): string {
      const p = join(s.dir, `data-${n++}.jsonl`);
      writeFileSync(p, Array.isArray(content) ? `${content.join("\n")}\n` : content);
      return p;
    },
    /** A copy of the tiny model directory, edited by `edit`. */
    modelCopy(edit: (dir: string) => void): string {
      const dir = join(s.dir, `model-${n++}`);
      cpSync(s.model, dir, { recursive: true });
      edit(dir);
      return dir;
    },
    /** A fresh path for an output. */
    fresh(stem: string): string {
      return join(s.dir, `${stem}-${n++}`);
    },
  };
}

/**
 * Runs `nrt train` (the tiny settings, 2 steps) into `out` and expects a refusal before anything is written: exit 2,
 * `nrt: error: …` with no stack trace, every `what` matched, and no run directory. Returns stderr.
 */
export function trainRefused(
  s: { model: string; data: string },
  out: string,
  args: { model?: string; data?: string; extra?: string[] },
  ...what: (string | RegExp)[]
): string {
  const r = nrt([
    ...["train", "--model", args.model ?? s.model, "--data", args.data ?? s.data, "--out", out, "--steps", "2"],
    ...TINY_FLAGS,
    ...(args.extra ?? []),
  ]);
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^nrt: error: /);
  expect(r.stderr).not.toMatch(STACK);
  for (const w of what) expect(r.stderr).toMatch(w);
  expect(existsSync(out), "the run directory must not be created").toBe(false);
  return r.stderr;
}
