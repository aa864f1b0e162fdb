/**
 * The engine seam: the three numeric primitives the trainer hands to whichever engine runs the model — sample,
 * score (teacher-forced log-probabilities) and step (forward + backward + AdamW) — plus weight sync. nrt keeps the
 * method (layout, rewards, advantages, per-token weights, metrics) and never asks which engine it has.
 *
 * An engine in this process answers at once; one across the network answers with a promise. `MaybePromise` lets
 * the same trainer code drive both without paying for promises on the native path (see `wait`).
 */

import { NrtError } from "../errors.js";
import type { AdamWSettings, AdamWState } from "../model/native.js";

/** Sequences laid end to end (SPEC §2 layout), as the native forward takes them. */
export interface SeqBatch {
  /** (N) token ids */
  readonly tokens: Int32Array;
  /** (S) length of each sequence; they sum to N */
  readonly lens: Int32Array;
}

/** Sampling settings for one call; every field is sent explicitly (engines have their own defaults). */
export interface SampleParams {
  /** samples per prompt (K) */
  k: number;
  /** most tokens to generate per sample */
  maxTokens: number;
  /** 0: greedy */
  temperature: number;
  /** 1: off */
  topP: number;
  /** 0: off */
  topK: number;
  /** the call's seed; prompt g samples with promptSeed(seed, g) */
  seed: number;
  /** token ids that end a sample (included in what the engine generates) */
  stop: readonly number[];
}

/** One sample: its tokens without the stop id that ended it, and which stop id that was. */
export interface Sampled {
  tokens: number[];
  /** the stop id that ended the sample, or -1 if it was cut at maxTokens */
  stopId: number;
  /** log π(token) at temperature 1, per token of `tokens` */
  logprobs: number[];
  /** entropy (nats) of π at each token, where the engine reports it; else null */
  entropy: number[] | null;
}

/** Teacher-forced scores of a SeqBatch: log p(tokens[t] | earlier tokens of its sequence), 0 at each first token. */
export interface Scored {
  logprobs: Float32Array;
  /** entropy (nats) of the distribution that predicted tokens[t], where the engine reports it */
  entropy: Float32Array | null;
}

export interface StepResult {
  /** Σ_t w_t · (−log π(tokens[t])) before the update */
  loss: number;
  /** global gradient norm before clipping; null where the engine does not report it */
  gradNorm: number | null;
  /** false: the loss or gradient was not finite and the weights were left as they were */
  applied: boolean;
}

/** What a checkpoint keeps of the engine besides the weights (which `pull` copies into the local model). */
export interface EngineState {
  /** AdamW moments and step, when they live in this process */
  optimizer: AdamWState | null;
  /** where the engine keeps its own state (e.g. a tinker:// path), for resuming; JSON */
  remote: Record<string, unknown> | null;
}

export type MaybePromise<T> = T | Promise<T>;

export interface Engine {
  /** "native", "tinker", … */
  readonly name: string;
  /** where it runs: "in process" or the server's URL */
  readonly where: string;
  /** updates applied so far (AdamW's step; the learning-rate schedule's step is updates + 1) */
  readonly updates: number;
  /** Makes the sampler use the current weights (a no-op in process); returns the weights' version. */
  syncSampler(): MaybePromise<number>;
  /** K samples after each prompt; result[g][k]. */
  sample(prompts: readonly (readonly number[])[], p: SampleParams): MaybePromise<Sampled[][]>;
  /** Teacher-forced log-probabilities of every token of `batch` under the current weights. */
  score(batch: SeqBatch): MaybePromise<Scored>;
  /**
   * Forward + backward of Σ_t w_t·(−log π(tokens[t])) and one AdamW update. Called right after `score` with the
   * same batch object and unchanged weights, an engine may reuse that forward (the native one does).
   */
  step(batch: SeqBatch, weights: Float32Array, o: AdamWSettings): MaybePromise<StepResult>;
  /** Copies the current weights into the local model's parameter buffer (for checkpoints and the final model). */
  pull(): MaybePromise<void>;
  /** Saves what a checkpoint named `name` needs besides the weights. */
  saveState(name: string): MaybePromise<EngineState>;
  close(): MaybePromise<void>;
}

/** What a generator-based caller yields while an engine works across the network. */
export type Pending = Promise<unknown>;

/**
 * `const x = yield* wait(engine.score(b))`: a value passes straight through; a promise is yielded to the driver,
 * which resumes the generator with its result (or throws its error into it).
 */
export function* wait<T>(x: MaybePromise<T>): Generator<Pending, T, unknown> {
  if (x instanceof Promise) return (yield x) as T;
  return x;
}

/**
 * The start-up probe's measure: mean |a[t] − b[t]| over the n − 1 predicted tokens of one scored sequence (t ≥ 1),
 * in nats per token. A server holding another model than the learner's shows as a large value.
 */
export function probeGap(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  let gap = 0;
  for (let i = 1; i < n; i++) gap += Math.abs(a[i] - b[i]);
  return gap / Math.max(1, n - 1);
}

/** A 32-bit seed for prompt g of a call seeded `seed` (murmur3's finaliser over both). */
export function promptSeed(seed: number, g: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(g + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The native generator seed of sample k of a prompt seeded `seed` (< 2^53, distinct per (seed, k)). */
export function streamSeed(seed: number, k: number): number {
  if (k >= 2 ** 20) throw new Error(`at most 2^20 samples per prompt (got k = ${k})`);
  return (seed >>> 0) * 2 ** 20 + k;
}

/**
 * An engine's failure, naming the engine, the endpoint and what came back: "tinker engine, POST http://…/api/v1/
 * forward_backward: HTTP 500: … (gave up after 5 attempts)". An NrtError, so the CLI prints it as a message.
 */
export class EngineError extends NrtError {
  constructor(
    readonly engine: string,
    readonly endpoint: string,
    message: string,
  ) {
    super(message, `${engine} engine, ${endpoint}`);
    this.name = "EngineError";
  }
}
