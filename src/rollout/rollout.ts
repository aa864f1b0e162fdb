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

/**
 * Samples K traces after each prompt, stopping at the first special token or at the trace limit; whatever the
 * model would write after that is discarded (SPEC §2). All G·K streams run as one batch with a KV cache.
 */
export function rollout(model: Model, prompts: number[][], o: RolloutOptions): Trace[][] {
  const flat: number[] = [];
  const lens: number[] = [];
  for (const p of prompts)
    for (let k = 0; k < o.k; k++) {
      for (const t of p) flat.push(t);
      lens.push(p.length);
    }
  const M = o.maxTraceTokens;
  const r = model.engine.generate(Int32Array.from(flat), Int32Array.from(lens), {
    maxNew: M,
    temperature: o.temperature,
    topP: o.topP,
    topK: o.topK,
    seed: o.seed,
    stop: o.specialIds,
  });
  const out: Trace[][] = [];
  for (let g = 0; g < prompts.length; g++) {
    const group: Trace[] = [];
    for (let k = 0; k < o.k; k++) {
      const b = g * o.k + k;
      const n = r.lengths[b];
      const stopped = r.stopped[b] === 1;
      const z = stopped ? n - 1 : n;
      const at = b * M;
      group.push({
        tokens: Array.from(r.tokens.subarray(at, at + z)),
        emitted: stopped && r.tokens[at + n - 1] === o.answerStartId,
        truncated: !stopped,
        logprobs: Array.from(r.logprobs.subarray(at, at + z)),
        entropy: Array.from(r.entropy.subarray(at, at + z)),
      });
    }
    out.push(group);
  }
  return out;
}
