// Shared by the test/grad suites (not a test file): a current build of bin/nrt.js, the PyTorch oracle
// dev/ref/nrt_grad_ref.py, random model directories and SPEC §6 batches, and readers for what both write.
// A missing /usr/bin/python3 or torch is an error, never a skip.

import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { saveModelDir } from "../../src/io/model-dir.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { llamaConfig, type ModelConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { Rng } from "../../src/util/rng.js";
import { toBf16Dir } from "../helpers/bf16.js";
import { ensureBuilt as ensureBuiltFor } from "../helpers/ensure-built.js";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const PYTHON = "/usr/bin/python3";
const REF = join(ROOT, "dev/ref/nrt_grad_ref.py");
const NRT = join(ROOT, "bin/nrt.js");

/** Makes sure bin/nrt.js runs the current sources of `nrt grad` (see test/helpers/ensure-built.ts). */
export function ensureBuilt(): void {
  ensureBuiltFor("src/cli/commands/grad.ts");
}

/** Fails loudly (never skips) without /usr/bin/python3 + torch + numpy. */
export function ensurePython(): void {
  const r = spawnSync(PYTHON, ["-c", "import torch, numpy"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(
      `the gradient oracle needs ${PYTHON} with torch and numpy (Debian: apt-get install python3-torch); ` +
        `${r.error?.message ?? r.stderr}`,
    );
  }
}

export type Dtype = "float64" | "float32";

/** Runs the PyTorch oracle on every job in one process (one torch import). */
export function runReference(jobs: { model: string; batch: string; out: string }[], dir: string, dtype: Dtype): void {
  const file = join(dir, `jobs-${dtype}.json`);
  writeFileSync(file, JSON.stringify(jobs));
  const r = spawnSync(PYTHON, [REF, "--jobs", file, "--dtype", dtype], { encoding: "utf8", cwd: ROOT });
  if (r.error || r.status !== 0) throw new Error(`nrt_grad_ref.py failed: ${r.error?.message ?? r.stderr}`);
}

/** `node bin/nrt.js grad --model DIR --batch FILE --out DIR`; throws (with stderr) on a non-zero exit. */
export function runNrtGrad(model: string, batch: string, out: string): void {
  execFileSync(process.execPath, [NRT, "grad", "--model", model, "--batch", batch, "--out", out], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
}

/** Runs `nrt grad` expecting failure: its exit status and stderr. */
export function runNrtGradFailing(
  model: string,
  batch: string,
  out: string,
): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [NRT, "grad", "--model", model, "--batch", batch, "--out", out], {
    cwd: ROOT,
    encoding: "utf8",
  });
  return { status: r.status, stderr: r.stderr };
}

export interface GroupStats {
  R: number[];
  R_prime: number[];
  A: number[];
  c: number[][];
  b: number[];
}

export interface Output {
  loss: number;
  groups: GroupStats[];
  grads: Map<string, Float32Array>;
}

/** Reads OUT/stats.json and OUT/grads.safetensors (with nrt's own validating reader). */
export function readOutput(out: string): Output {
  const stats = JSON.parse(readFileSync(join(out, "stats.json"), "utf8")) as { loss: number; groups: GroupStats[] };
  const { tensors } = readSafetensors(join(out, "grads.safetensors"));
  const grads = new Map<string, Float32Array>();
  for (const [name, t] of tensors) grads.set(name, t.data);
  return { ...stats, grads };
}

/**
 * Writes a random model directory: Model.init with std 0.3 (non-trivial probabilities), norms 1 + N(0, 0.2²),
 * biases N(0, 0.3²); with `bf16`, its tensors are then stored in bfloat16 (as most published checkpoints are).
 */
export function writeModel(dir: string, over: Partial<ModelConfig>, seed: number, bf16 = false): ModelConfig {
  const model = Model.init(llamaConfig({ vocabSize: 32, hiddenSize: 16, intermediateSize: 24, ...over }), seed, 0.3);
  const rng = new Rng(seed + 1000);
  for (const p of model.table) {
    if (p.shape.length !== 1) continue;
    const v = model.view(p.name);
    const bias = p.name.endsWith(".bias");
    for (let i = 0; i < v.length; i++) v[i] = bias ? 0.3 * rng.normal() : 1 + 0.2 * rng.normal();
  }
  saveModelDir(dir, model);
  if (bf16) toBf16Dir(dir);
  return model.config;
}

export const BOS = 1;
export const EOS = 2;
export const ANSWER_START = 3;

/**
 * Group shapes: [prompt length, answer length T, trace lengths, emitted flags]. Every batch has an empty trace,
 * non-emitted (truncated) traces and a group with T = 1. The first K traces of each row are used.
 */
const SHAPES: [number, number, number[], boolean[]][] = [
  [3, 3, [3, 0, 6, 1, 2], [true, true, false, true, false]],
  [2, 1, [2, 5, 0, 4, 1], [false, true, true, true, true]],
  [4, 4, [1, 4, 2, 7, 0], [true, false, true, true, false]],
];

export interface Trace {
  tokens: number[];
  emitted: boolean;
}

export interface BatchGroup {
  prompt: number[];
  answer: number[];
  traces: Trace[];
}

export interface Batch {
  config: Record<string, unknown>;
  answer_start_id: number;
  groups: BatchGroup[];
}

/** A SPEC §6 batch of G groups × K traces with random ids in [4, V) (prompts start with ⟨bos⟩, answers end with ⟨eos⟩). */
export function makeBatch(config: Record<string, unknown>, G: number, K: number, V: number, seed: number): Batch {
  const rng = new Rng(seed);
  const ids = (n: number): number[] => Array.from({ length: n }, () => rng.int(4, V - 1));
  const groups = SHAPES.slice(0, G).map(([P, T, lens, emitted]) => ({
    prompt: [BOS, ...ids(P - 1)],
    answer: [...ids(T - 1), EOS],
    traces: lens.slice(0, K).map((n, k) => ({ tokens: ids(n), emitted: emitted[k] })),
  }));
  return { config, answer_start_id: ANSWER_START, groups };
}
