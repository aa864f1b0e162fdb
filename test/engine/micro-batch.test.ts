// --micro-batch-tokens: a step over micro-batches of whole sequences gives the one-pass step's scores, loss and
// gradients to float32 rounding, for a full model and a LoRA adapter alike.
import { describe, expect, it } from "vitest";
import { microBatches } from "../../src/engine/micro-batch.js";
import { NativeEngine } from "../../src/engine/native.js";
import { LORA_TARGETS, LoraAdapter } from "../../src/model/lora.js";
import type { Model } from "../../src/model/model.js";
import { Rng } from "../../src/util/rng.js";
import { expectAllclose } from "../helpers/allclose.js";
import { maxAbs, randomBatch, randomModel } from "./random-model.js";

const ADAM = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, clip: 1 };

describe("microBatches", () => {
  const batch = { tokens: new Int32Array(30), lens: Int32Array.of(5, 7, 12, 2, 4) };
  it("groups whole consecutive sequences of at most N tokens; a longer sequence is alone", () => {
    const runs = microBatches(batch, 12)!;
    expect(runs.map((r) => Array.from(r.lens))).toEqual([[5, 7], [12], [2, 4]]);
    expect(runs.map((r) => [r.from, r.to])).toEqual([
      [0, 12],
      [12, 24],
      [24, 30],
    ]);
    expect(microBatches(batch, 8)!.map((r) => Array.from(r.lens))).toEqual([[5], [7], [12], [2, 4]]);
    expect(microBatches(batch, 30)).toBeNull();
  });
});

/** The engine's gradient buffer after a step (private: read for the test). */
const gradsOf = (e: NativeEngine) => (e as unknown as { grads: Float32Array }).grads;

function withLora(m: Model, seed: number): Model {
  const a = new LoraAdapter(m.config, { rank: 3, alpha: 6, targets: LORA_TARGETS });
  const rng = new Rng(seed);
  for (let i = 0; i < a.params.length; i++) a.params[i] = 0.2 * rng.normal();
  return m.withAdapter(a);
}

describe("NativeEngine with --micro-batch-tokens", () => {
  const lens = [9, 1, 17, 6, 11, 4];
  for (const lora of [false, true]) {
    it(`${lora ? "LoRA" : "full"}: scores, loss, gradients and the update equal the one-pass step's`, () => {
      const make = () => {
        const m = randomModel(
          { vocabSize: 40, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2 },
          7,
        );
        return lora ? withLora(m, 8) : m;
      };
      const b = randomBatch(lens, 40, 9);
      const seqs = { tokens: b.tokens, lens: b.seqLens };
      const one = new NativeEngine(make(), undefined, 0);
      const chunked = new NativeEngine(make(), undefined, 16);
      expect(microBatches(seqs, 16)!.length).toBeGreaterThan(2);
      const s1 = one.score(seqs);
      const s2 = chunked.score(seqs);
      expectAllclose(s2.logprobs, s1.logprobs, { atol: 1e-5, rtol: 1e-5, what: "logprobs" });
      expectAllclose(s2.entropy!, s1.entropy!, { atol: 1e-5, rtol: 1e-5, what: "entropy" });
      const r1 = one.step(seqs, b.weights, ADAM);
      const r2 = chunked.step(seqs, b.weights, ADAM);
      expect(r2.loss).toBeCloseTo(r1.loss, 4);
      expect(r2.gradNorm!).toBeCloseTo(r1.gradNorm!, 4);
      const g1 = gradsOf(one);
      expect(maxAbs(g1)).toBeGreaterThan(0);
      expectAllclose(gradsOf(chunked), g1, { atol: 1e-5 * maxAbs(g1), rtol: 1e-4, what: "grads" });
      expectAllclose(chunked.model.trainable, one.model.trainable, { atol: 1e-6, rtol: 1e-5, what: "updated" });
    });
  }
});
