// Batched generation and teacher forcing for evaluate.ts (internal).

import { generate, traceEnd } from "../model/generate.js";
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
  return generate(model, prefixes, { maxNew, temperature, topK: 0, topP: 1, seed, stop }).map((s) => ({
    trace: s.tokens,
    end: traceEnd(s, answerStartId),
    entropy: s.entropy,
  }));
}

/** Greedy answers after `prefixes`, up to `limit` tokens, until ⟨eos⟩ (excluded from `tokens`). */
export function answer(
  model: Model,
  prefixes: number[][],
  limit: number,
  eos: number,
): { tokens: number[]; eos: boolean }[] {
  return generate(model, prefixes, { maxNew: limit, temperature: 0, seed: 0, stop: [eos] }).map((s) => ({
    tokens: s.tokens,
    eos: s.stopId >= 0,
  }));
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
    const { logprobs } = model.runner.forward(
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
