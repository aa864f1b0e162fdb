// Batched generation and teacher forcing for evaluate.ts (internal).
import type { Model } from "../model/model.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { TraceEnd } from "./metrics.js";

/** Forward passes are split into chunks of about this many tokens (bounds the activation memory). */
const FORWARD_CHUNK_TOKENS = 8192;

/** A trace generated after a prefix. */
export interface Generated {
  trace: number[];
  end: TraceEnd;
  entropy: number[];
}

export interface TraceOptions {
  maxNew: number;
  /** 0: greedy; otherwise plain sampling at this temperature (no top-k, no top-p) */
  temperature: number;
  seed: number;
  /** every special id: a trace ends at the first one */
  stop: number[];
  answerStartId: number;
}

/**
 * One batch of traces after `prefixes`: up to `maxNew` tokens, ending at the first `stop` id, which is dropped
 * (SPEC §2). Stream b draws from the engine's random stream (seed, b).
 */
export function traces(model: Model, prefixes: number[][], o: TraceOptions): Generated[] {
  const { maxNew, temperature, seed, stop, answerStartId } = o;
  if (maxNew <= 0) return prefixes.map(() => ({ trace: [], end: "limit", entropy: [] }));
  const r = model.engine.generate(Int32Array.from(prefixes.flat()), Int32Array.from(prefixes.map((p) => p.length)), {
    maxNew,
    temperature,
    topK: 0,
    topP: 1,
    seed,
    stop,
  });
  return prefixes.map((_, b) => {
    const at = b * maxNew;
    const len = r.lengths[b];
    const stopped = r.stopped[b] === 1;
    const z = stopped ? len - 1 : len;
    return {
      trace: Array.from(r.tokens.subarray(at, at + z)),
      end: !stopped ? "limit" : r.tokens[at + len - 1] === answerStartId ? "answer_start" : "special",
      entropy: Array.from(r.entropy.subarray(at, at + z)),
    };
  });
}

/** Greedy answers after `prefixes`, up to `limit` tokens, until ⟨eos⟩ (excluded from `tokens`). */
export function answer(
  model: Model,
  prefixes: number[][],
  limit: number,
  eos: number,
): { tokens: number[]; eos: boolean }[] {
  const r = model.engine.generate(Int32Array.from(prefixes.flat()), Int32Array.from(prefixes.map((p) => p.length)), {
    maxNew: limit,
    temperature: 0,
    seed: 0,
    stop: [eos],
  });
  return prefixes.map((_, b) => {
    const stopped = r.stopped[b] === 1;
    const len = r.lengths[b] - (stopped ? 1 : 0);
    return { tokens: Array.from(r.tokens.subarray(b * limit, b * limit + len)), eos: stopped };
  });
}

/** log π(tokens[t] | tokens[<t]) for t ≥ from, per sequence, by teacher forcing in chunks of whole sequences. */
export function spanLogprobs(model: Model, seqs: { tokens: number[]; from: number }[]): number[][] {
  const out: number[][] = [];
  for (let s = 0; s < seqs.length; ) {
    let e = s;
    let total = 0;
    while (e < seqs.length && (e === s || total + seqs[e].tokens.length <= FORWARD_CHUNK_TOKENS))
      total += seqs[e++].tokens.length;
    const chunk = seqs.slice(s, e);
    const { logprobs } = model.engine.forward(
      Int32Array.from(chunk.flatMap((q) => q.tokens)),
      Int32Array.from(chunk.map((q) => q.tokens.length)),
    );
    let at = 0;
    for (const q of chunk) {
      out.push(Array.from(logprobs.subarray(at + q.from, at + q.tokens.length)));
      at += q.tokens.length;
    }
    s = e;
  }
  return out;
}

/** Decodes ids; ids the tokenizer lacks (padding rows of a larger model vocab) become `<id N>`. */
export function decodeLoose(tok: Tokenizer, ids: number[]): string {
  try {
    return tok.decode(ids);
  } catch {
    return ids.map((id) => (tok.idToToken(id) === null ? `<id ${id}>` : tok.decode([id]))).join("");
  }
}
