/**
 * The in-process engine: nrt's native forward/backward/KV-cache sampler and AdamW over the model's flat buffer.
 * `score` keeps its forward's activations; a `step` on the same batch object right after runs only the backward
 * (the trainer's one-forward path, SPEC §4).
 */
import type { Model } from "../model/model.js";
import { native } from "../model/native.js";
import {
  type Engine,
  type EngineState,
  type OptimStep,
  promptSeed,
  type Sampled,
  type SampleParams,
  type Scored,
  type SeqBatch,
  type StepResult,
  streamSeed,
} from "./engine.js";

/**
 * K samples after each prompt, all G·K streams in one batch with a KV cache. Stream k of prompt g draws from
 * streamSeed(promptSeed(seed, g), k), so a server that samples each prompt alone with promptSeed(seed, g) draws
 * the same tokens.
 */
export function nativeSample(model: Model, prompts: readonly (readonly number[])[], p: SampleParams): Sampled[][] {
  const flat: number[] = [];
  const lens: number[] = [];
  const seeds: number[] = [];
  prompts.forEach((prompt, g) => {
    const s = promptSeed(p.seed, g);
    for (let k = 0; k < p.k; k++) {
      for (const t of prompt) flat.push(t);
      lens.push(prompt.length);
      seeds.push(streamSeed(s, k));
    }
  });
  const M = p.maxTokens;
  const r = model.engine.generate(Int32Array.from(flat), Int32Array.from(lens), {
    maxNew: M,
    temperature: p.temperature,
    topP: p.topP,
    topK: p.topK,
    seed: p.seed,
    seeds,
    stop: [...p.stop],
  });
  return prompts.map((_, g) =>
    Array.from({ length: p.k }, (_, k): Sampled => {
      const b = g * p.k + k;
      const at = b * M;
      const n = r.lengths[b];
      const stopped = r.stopped[b] === 1;
      const z = stopped ? n - 1 : n;
      return {
        tokens: Array.from(r.tokens.subarray(at, at + z)),
        stopId: stopped ? r.tokens[at + n - 1] : -1,
        logprobs: Array.from(r.logprobs.subarray(at, at + z)),
        entropy: Array.from(r.entropy.subarray(at, at + z)),
      };
    }),
  );
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

  /** `optimizer`: AdamW moments and step to continue from (a checkpoint's); fresh zeros if absent. */
  constructor(
    readonly model: Model,
    optimizer?: { m: Float32Array; v: Float32Array; step: number },
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

  score(batch: SeqBatch): Scored {
    const r = this.model.engine.forward(batch.tokens, batch.lens);
    this.held = batch;
    return { logprobs: r.logprobs, entropy: r.entropy };
  }

  step(batch: SeqBatch, weights: Float32Array, o: OptimStep): StepResult {
    if (this.held !== batch) this.model.engine.forward(batch.tokens, batch.lens);
    this.held = null;
    this.grads ??= this.model.zeros();
    this.m ??= this.model.zeros();
    this.v ??= this.model.zeros();
    this.grads.fill(0);
    const loss = this.model.engine.backward(weights, this.grads);
    const norm = native().gradNorm(this.grads);
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) return { loss, gradNorm: norm, applied: false };
    const gradNorm = native().adamw(this.model.config, this.model.params, this.grads, this.m, this.v, {
      lr: o.lr,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      weightDecay: o.weightDecay,
      clip: o.clip,
      step: ++this.adamStep,
    });
    return { loss, gradNorm, applied: true };
  }

  gradNorms(batch: SeqBatch, weights: readonly Float32Array[]): number[] {
    const grads = this.model.zeros();
    const norms = weights.map((w) => {
      // a forward per backward: the backward may reuse the forward's buffers
      this.model.engine.forward(batch.tokens, batch.lens);
      grads.fill(0);
      this.model.engine.backward(w, grads);
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
