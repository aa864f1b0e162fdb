/**
 * Generation with the native sampler, and the one place that calls it: rollouts and the in-process engine
 * (`nativeSample`), `nrt eval` (src/eval/_batch.ts), `nrt chat` (`reply`) and `nrt sample` all come here. A stream is
 * cut at its stop id (SPEC §2: whatever the model would write after the first special token is discarded), and how
 * a trace ended is read from that stop id in one way (`traceEnd`).
 */
import { promptSeed, type Sampled, type SampleParams, streamSeed } from "../engine/engine.js";
import type { Model } from "../model/model.js";
import type { GenerateOptions, GenerateResult } from "../model/native.js";

/** One stream of the native sampler: a `Sampled` with the entropies the native sampler always reports. */
export type Stream = Sampled & { entropy: number[] };

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
  const opts = { vocabLimit: model.sampleVocab, ...o };
  const r = model.runner.generate(Int32Array.from(prompts.flat()), Int32Array.from(prompts.map((p) => p.length)), opts);
  return prompts.map((_, b) => cutAtStop(r, b, o.maxNew));
}

/**
 * K samples after each prompt, all G·K streams in one batch; result[g][k]. Stream k of prompt g draws from
 * streamSeed(promptSeed(seed, g), k), so a server that samples each prompt alone with promptSeed(seed, g) draws
 * the same tokens.
 */
export function nativeSample(model: Model, prompts: readonly (readonly number[])[], p: SampleParams): Stream[][] {
  const streams: (readonly number[])[] = [];
  const seeds: number[] = [];
  prompts.forEach((prompt, g) => {
    const s = promptSeed(p.seed, g);
    for (let k = 0; k < p.k; k++) {
      streams.push(prompt);
      seeds.push(streamSeed(s, k));
    }
  });
  const out = generate(model, streams, {
    maxNew: p.maxTokens,
    temperature: p.temperature,
    topP: p.topP,
    topK: p.topK,
    seed: p.seed,
    seeds,
    stop: [...p.stop],
  });
  return prompts.map((_, g) => out.slice(g * p.k, (g + 1) * p.k));
}

/**
 * How a trace sampled until the first special token ended (SPEC §2): on ⟨answer_start⟩ (the trace is `emitted`), on
 * another special token, or at the trace limit (`truncated`).
 */
export function traceEnd(s: Pick<Sampled, "stopId">, answerStartId: number): "answer_start" | "special" | "limit" {
  return s.stopId < 0 ? "limit" : s.stopId === answerStartId ? "answer_start" : "special";
}
