import type { Sampled, SampleParams } from "../engine/engine.js";
import { nativeSample } from "../engine/native.js";
import { traceEnd } from "../model/generate.js";
import type { Model } from "../model/model.js";

/** One sampled reasoning trace (SPEC §2). */
export interface Trace {
  /** trace tokens z, without the special token that ended it */
  tokens: number[];
  /** the model itself produced ⟨answer_start⟩ as its first special token */
  emitted: boolean;
  /** cut at the trace limit */
  truncated: boolean;
  /** log-probability of each trace token under the sampling policy (temperature 1) */
  logprobs: number[];
  /** entropy (nats) of the model's distribution at each trace token */
  entropy: number[];
}

export interface RolloutOptions {
  /** traces per prompt (K) */
  k: number;
  temperature: number;
  topP: number;
  topK: number;
  maxTraceTokens: number;
  seed: number;
  answerStartId: number;
  /** every special id: sampling stops at the first one (SPEC §2) */
  specialIds: number[];
}

/** The engine's sampling settings for a rollout: K per prompt, stop at any special token (SPEC §2). */
export function sampleParams(o: RolloutOptions): SampleParams {
  return {
    k: o.k,
    maxTokens: o.maxTraceTokens,
    temperature: o.temperature,
    topP: o.topP,
    topK: o.topK,
    seed: o.seed,
    stop: o.specialIds,
  };
}

/**
 * The engine's samples as traces: z is what came before the first special token (or the trace limit); `emitted`
 * when that token was ⟨answer_start⟩. An engine that does not report entropies (a remote one) gets the sampled
 * tokens' surprisal −log π(z_t) in their place: at temperature 1 without top-k/top-p its mean estimates the mean
 * entropy without bias.
 */
export function toTraces(sampled: readonly Sampled[][], answerStartId: number): Trace[][] {
  return sampled.map((group) =>
    group.map((s) => ({
      tokens: s.tokens,
      emitted: traceEnd(s, answerStartId) === "answer_start",
      truncated: traceEnd(s, answerStartId) === "limit",
      logprobs: s.logprobs,
      entropy: s.entropy ?? s.logprobs.map((x) => -x),
    })),
  );
}

/**
 * Samples K traces after each prompt in this process (the native engine), stopping at the first special token or at
 * the trace limit; whatever the model would write after that is discarded (SPEC §2). All G·K streams run as one
 * batch with a KV cache; trace k of prompt g draws from its own seed (see `nativeSample`).
 */
export function rollout(model: Model, prompts: number[][], o: RolloutOptions): Trace[][] {
  return toTraces(nativeSample(model, prompts, sampleParams(o)), o.answerStartId);
}
