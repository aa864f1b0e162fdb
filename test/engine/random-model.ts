// Small random models and batches for the engine tests. Not a test file.
import { llamaConfig, type ModelConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { Rng } from "../../src/util/rng.js";

/**
 * A model whose every tensor is random: matrices and biases N(0, std²), norm weights 1 + N(0, 0.2²) (Model.init's
 * all-ones norms and zero biases would hide a kernel that ignores them). std well above Model.init's 0.02 keeps attention far from uniform,
 * so the query/key paths carry real gradient.
 */
export function randomModel(over: Partial<ModelConfig>, seed: number, std = 0.25): Model {
  const model = new Model(llamaConfig(over));
  const rng = new Rng(seed);
  for (const p of model.table) {
    const v = model.view(p.name);
    const norm = p.shape.length === 1 && !p.name.endsWith(".bias");
    for (let i = 0; i < v.length; i++) v[i] = norm ? 1 + 0.2 * rng.normal() : std * rng.normal();
  }
  return model;
}

export interface Batch {
  tokens: Int32Array;
  seqLens: Int32Array;
  /** per-token loss weights in [-1, 1], a few exactly 0 */
  weights: Float32Array;
}

/** Random sequences of the given lengths laid end to end, with random signed weights. */
export function randomBatch(lens: number[], vocab: number, seed: number): Batch {
  const rng = new Rng(seed);
  const n = lens.reduce((a, b) => a + b, 0);
  const tokens = new Int32Array(n);
  const weights = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    tokens[i] = rng.int(0, vocab - 1);
    weights[i] = rng.next() < 0.1 ? 0 : 2 * rng.next() - 1;
  }
  return { tokens, seqLens: Int32Array.from(lens), weights };
}

export interface EngineRun {
  logits: Float32Array;
  logprobs: Float32Array;
  entropy: Float32Array;
  loss: number;
  grads: Float32Array;
}

/** forward → logits → backward on a fresh gradient buffer. */
export function runEngine(model: Model, b: Batch): EngineRun {
  const { logprobs, entropy } = model.runner.forward(b.tokens, b.seqLens);
  const logits = model.runner.logits();
  const grads = model.zeros();
  const loss = model.runner.backward(b.weights, grads);
  return { logits, logprobs, entropy, loss, grads };
}

/** Index of the largest value (the first one on ties, as the engine's greedy sampler picks). */
export function argmax(x: ArrayLike<number>, from = 0, to = x.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (x[i] > x[best]) best = i;
  return best - from;
}

export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}
