/**
 * Generation with the native sampler, and the one place that calls it: the in-process engine and rollouts
 * (src/engine/native.ts:nativeSample), `nrt eval` (src/eval/_batch.ts), `nrt chat` (src/rollout/reply.ts) and
 * `nrt sample` all come here. A stream is cut at its stop id (SPEC §2: whatever the model would write after the first
 * special token is discarded), and how a trace ended is read from that stop id in one way (`traceEnd`).
 */
import type { Model } from "./model.js";
import type { GenerateOptions, GenerateResult } from "./native.js";

/**
 * One generated stream: its tokens before the stop id that ended it, that id (−1: cut at the limit), and the
 * log-probability (temperature 1) and entropy of each kept token. The engine seam's `Sampled` (src/engine/engine.ts)
 * is this, with entropies where the engine reports them.
 */
export interface Stream {
  tokens: number[];
  stopId: number;
  logprobs: number[];
  entropy: number[];
}

/**
 * SPEC §2's cut of stream b of a native generate() result: its tokens before the stop id that ended it, and that
 * id (−1 when the stream ran to `maxNew`); logprobs and entropies of the kept tokens.
 */
function cutAtStop(r: GenerateResult, b: number, maxNew: number): Stream {
  const at = b * maxNew;
  const n = r.lengths[b];
  const stopped = r.stopped[b] === 1;
  const z = stopped ? n - 1 : n;
  return {
    tokens: Array.from(r.tokens.subarray(at, at + z)),
    stopId: stopped ? r.tokens[at + n - 1] : -1,
    logprobs: Array.from(r.logprobs.subarray(at, at + z)),
    entropy: Array.from(r.entropy.subarray(at, at + z)),
  };
}

/** One stream after each prompt, all in one batch with a KV cache, each cut at its stop id. */
export function generate(model: Model, prompts: readonly (readonly number[])[], o: GenerateOptions): Stream[] {
  if (o.maxNew === 0) return prompts.map(() => ({ tokens: [], stopId: -1, logprobs: [], entropy: [] }));
  const r = model.runner.generate(Int32Array.from(prompts.flat()), Int32Array.from(prompts.map((p) => p.length)), o);
  return prompts.map((_, b) => cutAtStop(r, b, o.maxNew));
}

/**
 * How a trace sampled until the first special token ended (SPEC §2): on ⟨answer_start⟩ (the trace is `emitted`), on
 * another special token, or at the trace limit (`truncated`).
 */
export function traceEnd(s: Pick<Stream, "stopId">, answerStartId: number): "answer_start" | "special" | "limit" {
  return s.stopId < 0 ? "limit" : s.stopId === answerStartId ? "answer_start" : "special";
}
