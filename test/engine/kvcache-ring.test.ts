// With a sliding window W much shorter than the sequence, the KV cache is a ring of 2W slots per stream
// (native/src/sampler.cc). Sampling far past the window, with prompts of different lengths in one batch and
// prompts longer than the ring, must still give what the full forward pass gives.
import { describe, expect, it } from "vitest";
import { expectAllclose } from "../helpers/allclose.js";
import { randomModel } from "./random-model.js";

const model = randomModel(
  {
    vocabSize: 32,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    modelType: "mistral",
    slidingWindow: 3,
  },
  7,
);

describe("KV cache as a ring past the sliding window", () => {
  it("cachedLogits equals forward for a prefix longer than the ring, then one token at a time", () => {
    const tokens = Int32Array.from({ length: 40 }, (_, i) => (i * 7 + 3) % 32);
    model.runner.forward(tokens, Int32Array.of(tokens.length));
    const full = model.runner.logits();
    for (const prefix of [1, 5, 17, 40])
      expectAllclose(model.runner.cachedLogits(tokens, prefix), full, {
        atol: 2e-5,
        rtol: 1e-4,
        what: `prefix ${prefix}`,
      });
  });

  it("generate's log-probabilities equal forward's for streams far past the window", () => {
    const prompts = [
      Array.from({ length: 15 }, (_, i) => (i * 5 + 1) % 32),
      [1, 2],
      Array.from({ length: 9 }, (_, i) => (i * 3) % 32),
    ];
    const maxNew = 30;
    const r = model.runner.generate(Int32Array.from(prompts.flat()), Int32Array.from(prompts.map((p) => p.length)), {
      maxNew,
      temperature: 1,
      seed: 3,
      stop: [],
    });
    prompts.forEach((p, b) => {
      expect(r.lengths[b]).toBe(maxNew);
      const gen = Array.from(r.tokens.subarray(b * maxNew, (b + 1) * maxNew));
      const seq = Int32Array.from([...p, ...gen]);
      const lp = model.runner.forward(seq, Int32Array.of(seq.length)).logprobs.subarray(p.length);
      expectAllclose(r.logprobs.subarray(b * maxNew, (b + 1) * maxNew), lp, {
        atol: 2e-5,
        rtol: 1e-4,
        what: `stream ${b}`,
      });
    });
  });
});
