/**
 * The in-process engine: nrt's native forward/backward/KV-cache sampler and AdamW over the model's flat buffer
 * (sampling through src/model/generate.ts, as every other caller of the native sampler).
 * `score` keeps its forward's activations; a `step` on the same batch object right after runs only the backward
 * (the trainer's one-forward path, SPEC §4).
 */

import { generate, type Stream } from "../model/generate.js";
import type { Model } from "../model/model.js";
import { type AdamWSettings, type AdamWState, native } from "../model/native.js";
import type { Engine, EngineState, Sampled, SampleParams, Scored, SeqBatch, StepResult } from "./engine.js";
import { promptSeed, streamSeed } from "./engine.js";
import { type MicroBatch, microBatches, microBatchLimit } from "./micro-batch.js";

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

export class NativeEngine implements Engine {
  readonly name = "native";
  readonly where = "in process";
  private grads: Float32Array | null = null;
  private m: Float32Array | null = null;
  private v: Float32Array | null = null;
  private adamStep: number;
  /** the batch whose forward the native engine holds, not yet used by a backward */
  private held: SeqBatch | null = null;

  /**
   * `optimizer`: AdamW moments and step to continue from (a checkpoint's); fresh zeros if absent.
   * `microBatchTokens`: most tokens per forward/backward pass (0: auto, see src/engine/micro-batch.ts).
   */
  constructor(
    readonly model: Model,
    optimizer?: AdamWState,
    readonly microBatchTokens = 0,
  ) {
    this.adamStep = optimizer?.step ?? 0;
    if (optimizer) {
      this.m = optimizer.m;
      this.v = optimizer.v;
    }
  }

  get updates(): number {
    return this.adamStep;
  }

  syncSampler(): number {
    return this.adamStep; // the sampler reads the parameters themselves
  }

  sample(prompts: readonly (readonly number[])[], p: SampleParams): Sampled[][] {
    this.held = null; // generate() does not touch the forward's activations, but keep the rule simple
    return nativeSample(this.model, prompts, p);
  }

  /** the batch's micro-batches, or null when it is one pass */
  private runs(batch: SeqBatch): MicroBatch[] | null {
    return microBatches(batch, microBatchLimit(this.model.config, batch, this.microBatchTokens));
  }

  score(batch: SeqBatch): Scored {
    const runs = this.runs(batch);
    if (!runs) {
      const r = this.model.runner.forward(batch.tokens, batch.lens);
      this.held = batch;
      return { logprobs: r.logprobs, entropy: r.entropy };
    }
    this.held = null; // the step runs each micro-batch's forward again
    const logprobs = new Float32Array(batch.tokens.length);
    const entropy = new Float32Array(batch.tokens.length);
    for (const run of runs) {
      const r = this.model.runner.forward(run.tokens, run.lens);
      logprobs.set(r.logprobs, run.from);
      entropy.set(r.entropy, run.from);
    }
    return { logprobs, entropy };
  }

  /** forward + backward of `weights` on `batch` into `grads` (zeroed first), run by run; the loss */
  private accumulate(batch: SeqBatch, weights: Float32Array, grads: Float32Array): number {
    grads.fill(0);
    const runs = this.runs(batch);
    if (!runs) {
      if (this.held !== batch) this.model.runner.forward(batch.tokens, batch.lens);
      this.held = null;
      return this.model.runner.backward(weights, grads);
    }
    this.held = null;
    let loss = 0;
    for (const run of runs) {
      this.model.runner.forward(run.tokens, run.lens);
      loss += this.model.runner.backward(weights.subarray(run.from, run.to), grads);
    }
    return loss;
  }

  step(batch: SeqBatch, weights: Float32Array, o: AdamWSettings): StepResult {
    this.grads ??= this.model.zeros();
    this.m ??= this.model.zeros();
    this.v ??= this.model.zeros();
    const loss = this.accumulate(batch, weights, this.grads);
    const norm = native().gradNorm(this.grads);
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) return { loss, gradNorm: norm, applied: false };
    const gradNorm = native().adamw(this.model.nativeConfig, this.model.trainable, this.grads, this.m, this.v, {
      ...o,
      step: ++this.adamStep,
    });
    return { loss, gradNorm, applied: true };
  }

  gradNorms(batch: SeqBatch, weights: readonly Float32Array[]): number[] {
    const grads = this.model.zeros();
    const norms = weights.map((w) => {
      this.held = null; // a forward per backward: the backward may reuse the forward's buffers
      this.accumulate(batch, w, grads);
      return native().gradNorm(grads);
    });
    this.held = null; // the next step runs its own forward
    return norms;
  }

  pull(): void {} // the weights are the local model's own buffer

  saveState(): EngineState {
    this.m ??= this.model.zeros();
    this.v ??= this.model.zeros();
    return { optimizer: { m: this.m, v: this.v, step: this.adamStep }, remote: null };
  }

  close(): void {}
}
