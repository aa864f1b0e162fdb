/**
 * Micro-batches (`--micro-batch-tokens`): a packed batch split into runs of whole sequences of at most N tokens, so
 * that the in-process engine holds one run's activations at a time and accumulates the gradients over the runs. A
 * sequence longer than N is a run of its own.
 */
import type { ModelConfig } from "../model/config.js";
import { activationBytes } from "../model/memory.js";
import type { SeqBatch } from "./engine.js";

/** Activation memory a step may take before `--micro-batch-tokens 0` (auto) splits it. */
export const AUTO_ACTIVATION_BYTES = 4 * 1024 ** 3;

/** One run of consecutive sequences: its tokens and lengths (views of the batch's) and its token range. */
export interface MicroBatch extends SeqBatch {
  /** first token of the run in the batch */
  readonly from: number;
  /** one past its last token */
  readonly to: number;
}

/** The tokens per run that `limit` means: itself, or for 0 what fits AUTO_ACTIVATION_BYTES at this batch's lengths. */
export function microBatchLimit(c: ModelConfig, batch: SeqBatch, limit: number): number {
  if (limit > 0) return limit;
  const longest = batch.lens.reduce((a, b) => Math.max(a, b), 1);
  return Math.max(1, Math.floor(AUTO_ACTIVATION_BYTES / activationBytes(c, 1, longest)));
}

/** The runs of `batch` under `limit` tokens, or null when the whole batch is within it (one pass, no split). */
export function microBatches(batch: SeqBatch, limit: number): MicroBatch[] | null {
  if (batch.tokens.length <= limit) return null;
  const runs: MicroBatch[] = [];
  let from = 0;
  let s0 = 0;
  let n = 0;
  const close = (s1: number) => {
    runs.push({ tokens: batch.tokens.subarray(from, from + n), lens: batch.lens.subarray(s0, s1), from, to: from + n });
    from += n;
    s0 = s1;
    n = 0;
  };
  batch.lens.forEach((len, s) => {
    if (n > 0 && n + len > limit) close(s);
    n += len;
  });
  close(batch.lens.length);
  return runs;
}
