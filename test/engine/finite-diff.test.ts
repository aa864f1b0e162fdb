// Central finite differences of the engine's own loss against its backward(), for every tensor type: embedding,
// input/post-attention/final norms, q/k/v/o, gate/up/down, lm_head and the tied embedding (which must carry both
// the input-embedding and the output-head terms).
//
// The engine is float32, so the step cannot be tiny: float32 rounding of the loss (a few 1e-6 here) divided by the
// step swamps small steps, and plain central differences at 1e-2 still carry ~1e-3 of truncation error on the
// strongly curved embedding entries. Richardson extrapolation of central differences at steps 2e-2 and 1e-2
// cancels the h² term; measured on these models the error is then ≤ ~1e-4 of the gradient (≤ ~4e-4 along
// random whole-tensor directions, ≤ 3e-5 of Σ|g·d|). We allow 1e-3 relative (+ 1e-4 of the tensor's scale): about
// 5x above that noise, while a sign error (relative error 2), a factor of 2, or a missing term worth more than
// ~0.1% of an entry fails. Tensor entries probed are those with the largest gradients, so the check is never
// vacuous (a zero gradient fails the test). dev/ref/mutation-check.sh builds engines with deliberately broken
// backward kernels (rmsnorm, swiglu, attention, rope, embedding, xent, tied head); this file fails on each.
import { beforeAll, describe, expect, it } from "vitest";
import type { ModelConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { setThreads } from "../../src/model/native.js";
import { Rng } from "../../src/util/rng.js";
import { expectAllclose } from "../helpers/allclose.js";
import { type Batch, maxAbs, randomBatch, randomModel } from "./random-model.js";

const EPS = 2e-2;
const RTOL = 1e-3;

const small: Partial<ModelConfig> = {
  vocabSize: 16,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 6, // Q = 24 != C = 16
};

const variants: { name: string; over: Partial<ModelConfig> }[] = [
  { name: "untied, GQA, full causal", over: {} },
  { name: "tied, GQA, sliding window 3", over: { tied: true, modelType: "mistral", slidingWindow: 3 } },
];

/** loss = Σ_t w_t · (−logprobs[t]) from forward() alone, summed in double */
function lossOf(model: Model, b: Batch): number {
  const { logprobs } = model.runner.forward(b.tokens, b.seqLens);
  let s = 0;
  for (let t = 0; t < logprobs.length; t++) s -= b.weights[t] * logprobs[t];
  return s;
}

function gradOf(model: Model, b: Batch): { loss: number; grads: Float32Array } {
  model.runner.forward(b.tokens, b.seqLens);
  const grads = model.zeros();
  const loss = model.runner.backward(b.weights, grads);
  return { loss, grads };
}

/**
 * d/dh loss(θ + h·d) at h = 0 along direction d over the parameters idx, by Richardson-extrapolated central
 * differences: (4·D(EPS/2) − D(EPS)) / 3 with D(h) = (L(h) − L(−h)) / 2h, which cancels the h² truncation term.
 * (float32 rounds θ + h·d; that changes each step by ≤ 1e-5 of itself, far below the tolerance.)
 */
function derivative(model: Model, b: Batch, idx: number[], d: number[]): number {
  const P = model.params;
  const th = idx.map((i) => P[i]);
  const at = (h: number) => {
    idx.forEach((i, k) => {
      P[i] = th[k] + h * d[k];
    });
    return lossOf(model, b);
  };
  const D = (h: number) => (at(h) - at(-h)) / (2 * h);
  const r = (4 * D(EPS / 2) - D(EPS)) / 3;
  idx.forEach((i, k) => {
    P[i] = th[k];
  });
  return r;
}

function fdEntry(model: Model, b: Batch, i: number): number {
  return derivative(model, b, [i], [1]);
}

/** The entries to probe in a tensor: its two largest gradients and one random entry with at least 20% of the max. */
function probes(g: Float32Array, rng: Rng): number[] {
  const order = [...g.keys()].sort((a, c) => Math.abs(g[c]) - Math.abs(g[a]));
  const big = order.filter((k) => Math.abs(g[k]) >= 0.2 * Math.abs(g[order[0]]));
  return [order[0], order[1], big[rng.int(0, big.length - 1)]];
}

beforeAll(() => setThreads(1));

for (const [vi, v] of variants.entries()) {
  describe(v.name, () => {
    let model: Model;
    let batch: Batch;
    let grads: Float32Array;
    beforeAll(() => {
      model = randomModel({ ...small, ...v.over }, 7 + vi, 0.3);
      batch = randomBatch([7, 5, 1, 6], model.config.vocabSize, 17 + vi);
      const r = gradOf(model, batch);
      grads = r.grads;
      expect(r.loss).toBeCloseTo(lossOf(model, batch), 5);
    });

    it("covers every tensor type", () => {
      const kinds = new Set(model.table.map((p) => p.name.replace(/\d+\./, "N.")));
      const want = [
        "model.embed_tokens.weight",
        "model.norm.weight",
        ...["input_layernorm", "post_attention_layernorm"].map((n) => `model.layers.N.${n}.weight`),
        ...["q", "k", "v", "o"].map((n) => `model.layers.N.self_attn.${n}_proj.weight`),
        ...["gate", "up", "down"].map((n) => `model.layers.N.mlp.${n}_proj.weight`),
        ...(model.config.tied ? [] : ["lm_head.weight"]),
      ];
      expect([...kinds].sort()).toEqual(want.sort());
    });

    it("single entries of every tensor: central difference = backward", () => {
      const rng = new Rng(1000 + vi);
      for (const p of model.table) {
        const g = model.view(p.name, grads);
        const scale = maxAbs(g);
        expect(scale, `${p.name} gradient is zero; the check would be vacuous`).toBeGreaterThan(1e-3);
        for (const k of probes(g, rng)) {
          const fd = fdEntry(model, batch, p.offset + k);
          const err = Math.abs(fd - g[k]);
          expect(err, `${p.name}[${k}]: backward ${g[k]}, central difference ${fd}`).toBeLessThanOrEqual(
            RTOL * Math.abs(g[k]) + 1e-4 * scale,
          );
        }
      }
    });

    it("a random direction through each whole tensor: d/dh loss(θ + h·d) = g · d", () => {
      const rng = new Rng(2000 + vi);
      for (const p of model.table) {
        const g = model.view(p.name, grads);
        const d = Array.from(g, () => rng.normal());
        const m = maxAbs(d);
        const dir = d.map((x) => x / m); // every entry moves by at most EPS
        const idx = dir.map((_, k) => p.offset + k);
        const got = derivative(model, batch, idx, dir);
        let want = 0;
        let mass = 0;
        for (let k = 0; k < g.length; k++) {
          want += g[k] * dir[k];
          mass += Math.abs(g[k] * dir[k]);
        }
        expect(
          Math.abs(got - want),
          `${p.name}: finite difference ${got}, g·d ${want} (Σ|g·d| ${mass})`,
        ).toBeLessThanOrEqual(RTOL * Math.abs(want) + 1e-4 * mass);
      }
    });
  });
}

describe("tied embeddings carry both terms", () => {
  // An untied twin with lm_head = embed computes the same function; its two gradients must add up to the tied one,
  // and finite differences on the tied model must reject either part alone (what dropping a term would give).
  it("tied grad = embed grad + lm_head grad of the untied twin, and neither part alone passes", () => {
    const tied = randomModel({ ...small, tied: true }, 31, 0.3);
    const twin = new Model({ ...tied.config, tied: false });
    for (const p of tied.table) twin.view(p.name).set(tied.view(p.name));
    twin.view("lm_head.weight").set(tied.view("model.embed_tokens.weight"));
    const batch = randomBatch([8, 6], small.vocabSize!, 32);

    const gt = gradOf(tied, batch);
    const gu = gradOf(twin, batch);
    expect(gu.loss).toBeCloseTo(gt.loss, 6);
    const emb = twin.view("model.embed_tokens.weight", gu.grads);
    const head = twin.view("lm_head.weight", gu.grads);
    const sum = emb.map((x, i) => x + head[i]);
    const g = tied.view("model.embed_tokens.weight", gt.grads);
    expectAllclose(g, sum, { atol: 1e-5 * maxAbs(sum), rtol: 1e-4, what: "tied embed grad vs sum of untied parts" });

    const off = tied.table[0].offset;
    let rejectedEmb = 0;
    let rejectedHead = 0;
    // probe the entries where both terms are largest (rows of tokens that are read and also predicted)
    const both = [...g.keys()].sort(
      (a, c) => Math.min(Math.abs(emb[c]), Math.abs(head[c])) - Math.min(Math.abs(emb[a]), Math.abs(head[a])),
    );
    for (const k of both.slice(0, 3)) {
      const fd = fdEntry(tied, batch, off + k);
      const tol = RTOL * Math.abs(fd) + 1e-4 * maxAbs(g);
      expect(Math.abs(fd - g[k]), `tied embed[${k}]: backward ${g[k]}, central difference ${fd}`).toBeLessThanOrEqual(
        tol,
      );
      if (Math.abs(fd - emb[k]) > tol) rejectedEmb++;
      if (Math.abs(fd - head[k]) > tol) rejectedHead++;
    }
    expect(rejectedEmb, "finite differences cannot tell the full tied grad from the embedding term alone").toBe(3);
    expect(rejectedHead, "finite differences cannot tell the full tied grad from the lm_head term alone").toBe(3);
  });
});
