/**
 * What the native engine will allocate for a batch, estimated from its buffers (native/src/model.cc, sampler.cc),
 * so that a batch too large for the machine is refused with the flag to change instead of ending in
 * `std::bad_alloc` or the kernel's out-of-memory killer.
 */
import os from "node:os";
import { NrtError } from "../errors.js";
import type { ModelConfig } from "./config.js";

const GB = 1024 ** 3;

/** Bytes of the forward + backward activations of `tokens` packed tokens in sequences of up to `seqLen`. */
export function activationBytes(c: ModelConfig, tokens: number, seqLen: number): number {
  const C = c.hiddenSize;
  const F = c.intermediateSize;
  const Q = c.numHeads * c.headDim;
  const QKV = Q + 2 * c.numKvHeads * c.headDim;
  const perToken =
    c.numLayers * (5 * C + QKV + Q + 3 * F + 2) + 2 * C + c.vocabSize + c.headDim + 6 + (2 * C + 3 * F + Q + QKV);
  const attention = c.numLayers * c.numHeads * tokens * Math.min(seqLen, c.slidingWindow || seqLen);
  return 4 * (tokens * perToken + attention);
}

/** Bytes of the KV cache and logits of `streams` sampled at once for up to `seqLen` positions. */
export function samplerBytes(c: ModelConfig, streams: number, seqLen: number): number {
  const kv = 2 * c.numLayers * seqLen * c.numKvHeads * c.headDim;
  return 4 * streams * (kv + 2 * c.vocabSize + 4 * c.hiddenSize + 2 * c.intermediateSize);
}

/**
 * Refuses a batch whose estimated memory exceeds the machine's: `what` says what the batch is, `flags` what to
 * lower (named in the error).
 */
export function checkFits(bytes: number, what: string, flags: string): void {
  const total = os.totalmem();
  if (bytes <= total) return;
  throw new NrtError(
    `${what} needs about ${(bytes / GB).toFixed(1)} GB, more than this machine's ${(total / GB).toFixed(1)} GB; lower ${flags}`,
    flags.split(/[ ,]/)[0],
  );
}
