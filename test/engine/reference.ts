// Runs the PyTorch oracle dev/ref/llama_ref.py (STYLE.md example 5) and decodes its answer. Not a test file:
// parity.test.ts imports it. A missing /usr/bin/python3 or torch is an error, never a skip.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ModelConfig } from "../../src/model/config.js";
import type { Model } from "../../src/model/model.js";

export const PYTHON = "/usr/bin/python3";
export const REF_SCRIPT = fileURLToPath(new URL("../../dev/ref/llama_ref.py", import.meta.url));

export interface RefJob {
  config: ModelConfig;
  /** base64 of the flat float32 little-endian parameters */
  params: string;
  table: { name: string; shape: number[]; offset: number; size: number }[];
  tokens: number[];
  seqLens: number[];
  weights: number[];
  dtype: "float32" | "float64";
  /** a LoRA adapter over the (then frozen) base: PEFT's tensor names; grads are then the adapter's alone */
  lora?: {
    rank: number;
    alpha: number;
    params: string;
    table: { name: string; shape: number[]; offset: number; size: number }[];
  };
}

export interface RefResult {
  dtype: string;
  /** (N, V), row t predicts token t + 1 of its sequence */
  logits: Float64Array;
  logprobs: Float64Array;
  entropy: Float64Array;
  loss: number;
  /** d loss / d tensor, flat, under the Hugging Face names */
  grads: Record<string, Float64Array>;
}

/** A job for `model` on packed sequences; `config` may be overridden (e.g. a different window, for negative controls). */
export function refJob(
  model: Model,
  tokens: Int32Array,
  seqLens: Int32Array,
  weights: Float32Array,
  dtype: RefJob["dtype"],
  config: ModelConfig = model.config,
): RefJob {
  const p = model.params;
  return {
    config,
    params: Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString("base64"),
    table: model.table.map(({ name, shape, offset, size }) => ({ name, shape, offset, size })),
    tokens: Array.from(tokens),
    seqLens: Array.from(seqLens),
    weights: Array.from(weights),
    dtype,
  };
}

function f64(b64: string): Float64Array {
  const buf = Buffer.from(b64, "base64");
  // copy into a fresh, 8-byte aligned buffer
  return new Float64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Runs all jobs in one python process (one torch import). Throws a clear error if python or torch is missing. */
export function runReference(jobs: RefJob[]): RefResult[] {
  let out: string;
  try {
    out = execFileSync(PYTHON, [REF_SCRIPT], {
      input: JSON.stringify(jobs),
      maxBuffer: 1 << 30,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
    });
  } catch (e) {
    const err = e as { code?: string; stderr?: string; message: string };
    const missing = /No module named '([^']+)'/.exec(err.stderr ?? "");
    const why =
      err.code === "ENOENT"
        ? `${PYTHON} does not exist`
        : missing
          ? `it cannot import ${missing[1]}`
          : `it failed: ${err.stderr || err.message}`;
    throw new Error(
      `the PyTorch reference (${PYTHON} ${REF_SCRIPT}) is required and ${why}. Install Debian's python3-torch ` +
        "(apt-get install python3-torch); this test never skips.",
    );
  }
  const raw = JSON.parse(out) as {
    dtype: string;
    logits: string;
    logprobs: string;
    entropy: string;
    loss: number;
    grads: Record<string, string>;
  }[];
  return raw.map((r) => ({
    dtype: r.dtype,
    logits: f64(r.logits),
    logprobs: f64(r.logprobs),
    entropy: f64(r.entropy),
    loss: r.loss,
    grads: Object.fromEntries(Object.entries(r.grads).map(([k, v]) => [k, f64(v)])),
  }));
}
