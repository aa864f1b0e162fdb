// The KV-cache path (cachedLogits, generate) against the full forward pass, and the sampler's contract:
// greedy = argmax of forward, logprobs = forward's teacher-forced logprobs, seeds, stop ids, top-k / top-p.
import { beforeAll, describe, expect, it } from "vitest";
import type { ModelConfig } from "../../src/model/config.js";
import type { Model } from "../../src/model/model.js";
import { type GenerateOptions, setThreads } from "../../src/model/native.js";
import { expectAllclose, maxDiff } from "../helpers/allclose.js";
import { argmax, maxAbs, randomBatch, randomModel } from "./random-model.js";

const base: Partial<ModelConfig> = { vocabSize: 32, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4 };

const variants: { name: string; over: Partial<ModelConfig> }[] = [
  { name: "untied MHA", over: { numKvHeads: 4 } },
  { name: "GQA 4q/2kv, headDim 12, W=4", over: { numKvHeads: 2, headDim: 12, modelType: "mistral", slidingWindow: 4 } },
  { name: "tied MQA, W=1", over: { numKvHeads: 1, tied: true, modelType: "mistral", slidingWindow: 1 } },
  {
    name: "llama rope_scaling llama3, GQA",
    over: {
      numKvHeads: 2,
      ropeScaling: {
        type: "llama3",
        factor: 8,
        lowFreqFactor: 2,
        highFreqFactor: 16,
        originalMaxPositionEmbeddings: 512,
      },
    },
  },
  { name: "llama rope_scaling linear 2", over: { ropeScaling: { type: "linear", factor: 2 } } },
  { name: "qwen2 biases, W=3 on layers >= 1", over: { modelType: "qwen2", slidingWindow: 3, maxWindowLayers: 1 } },
  { name: "qwen3 q/k norm, headDim 12, GQA", over: { modelType: "qwen3", headDim: 12, numKvHeads: 2 } },
];

// Logits of the cache path come from the same float32 kernels in a different grouping (one row vs all rows), so
// they agree to rounding (measured ≤ 1.2e-6 of the logits' scale); 3e-5 of the scale leaves a 25x margin.
const LOGIT_TOL = 3e-5;

/** The (N, V) logits of one sequence through the full forward pass. */
function forwardLogits(model: Model, tokens: Int32Array): Float32Array {
  model.runner.forward(tokens, Int32Array.of(tokens.length));
  return model.runner.logits();
}

/** Greedy continuation by repeated full forward passes (no cache): argmax of the last row, maxNew times or to a stop id. */
function greedyByForward(model: Model, prompt: number[], maxNew: number, stop: number[] = []): number[] {
  const seq = [...prompt];
  const V = model.config.vocabSize;
  const out: number[] = [];
  for (let s = 0; s < maxNew; s++) {
    const logits = forwardLogits(model, Int32Array.from(seq));
    const t = argmax(logits, (seq.length - 1) * V, seq.length * V);
    out.push(t);
    seq.push(t);
    if (stop.includes(t)) break;
  }
  return out;
}

const PROMPTS = [[3, 1, 4], [1, 5, 9, 2, 6], [7]];

function gen(model: Model, prompts: number[][], opts: Partial<GenerateOptions>) {
  const o: GenerateOptions = { maxNew: 12, temperature: 1, seed: 1, stop: [], ...opts };
  const r = model.runner.generate(Int32Array.from(prompts.flat()), Int32Array.from(prompts.map((p) => p.length)), o);
  const streams = prompts.map((_, b) => Array.from(r.tokens.subarray(b * o.maxNew, b * o.maxNew + r.lengths[b])));
  return { ...r, streams, maxNew: o.maxNew };
}

beforeAll(() => setThreads(1));

for (const [vi, v] of variants.entries()) {
  describe(v.name, () => {
    let model: Model;
    beforeAll(() => {
      model = randomModel({ ...base, ...v.over }, 10 + vi, 0.3);
    });

    it("cachedLogits equals forward logits (prefix 1, mid, whole)", () => {
      const { tokens } = randomBatch([17], model.config.vocabSize, 20 + vi);
      const full = forwardLogits(model, tokens);
      const scale = maxAbs(full);
      for (const prefix of [1, 8, tokens.length]) {
        const cached = model.runner.cachedLogits(tokens, prefix);
        expectAllclose(cached, full, { atol: LOGIT_TOL * scale, rtol: 0, what: `cachedLogits prefix ${prefix}` });
      }
    });

    it("greedy generate() (temperature 0) equals repeated argmax of forward(), streams independent of the batch", () => {
      const r = gen(model, PROMPTS, { temperature: 0, maxNew: 14 });
      PROMPTS.forEach((p, b) => {
        expect(r.streams[b], `stream ${b}`).toEqual(greedyByForward(model, p, 14));
        expect(r.lengths[b]).toBe(14);
        expect(r.stopped[b]).toBe(0);
        expect(gen(model, [p], { temperature: 0, maxNew: 14 }).streams[0], `stream ${b} alone`).toEqual(r.streams[b]);
      });
    });

    it("generate()'s logprobs and entropy equal forward()'s teacher-forced values", () => {
      for (const opts of [{ temperature: 1 }, { temperature: 0.7, topK: 5 }, { temperature: 1.3, topP: 0.8 }]) {
        const r = gen(model, PROMPTS, { ...opts, seed: 7 });
        PROMPTS.forEach((p, b) => {
          const seq = Int32Array.from([...p, ...r.streams[b]]);
          const f = model.runner.forward(seq, Int32Array.of(seq.length));
          const n = r.lengths[b];
          const what = `${JSON.stringify(opts)} stream ${b}`;
          const at = b * r.maxNew;
          expectAllclose(r.logprobs.subarray(at, at + n), f.logprobs.subarray(p.length), {
            atol: 2e-5,
            rtol: 1e-5,
            what: `${what} logprobs`,
          });
          expectAllclose(r.entropy.subarray(at, at + n), f.entropy.subarray(p.length), {
            atol: 2e-5,
            rtol: 1e-5,
            what: `${what} entropy`,
          });
          // past the stream's end: token -1, logprob and entropy 0
          for (let i = at + n; i < at + r.maxNew; i++)
            expect([r.tokens[i], r.logprobs[i], r.entropy[i]]).toEqual([-1, 0, 0]);
        });
      }
    });

    it("same seed gives identical tokens, different seeds differ; stream b does not depend on the other streams", () => {
      const a = gen(model, PROMPTS, { temperature: 1, seed: 42, maxNew: 16 });
      const b = gen(model, PROMPTS, { temperature: 1, seed: 42, maxNew: 16 });
      const c = gen(model, PROMPTS, { temperature: 1, seed: 43, maxNew: 16 });
      expect(Array.from(b.tokens)).toEqual(Array.from(a.tokens));
      expect(Array.from(b.logprobs)).toEqual(Array.from(a.logprobs));
      expect(Array.from(c.tokens)).not.toEqual(Array.from(a.tokens));
      for (let s = 0; s < PROMPTS.length; s++) {
        expect(c.streams[s], `stream ${s} with seeds 42 and 43`).not.toEqual(a.streams[s]);
      }
      const other = gen(model, [PROMPTS[0], [2, 2]], { temperature: 1, seed: 42, maxNew: 16 });
      expect(other.streams[0]).toEqual(a.streams[0]);
    });

    it("a stop id ends its stream (included), and only that stream", () => {
      const greedy = PROMPTS.map((p) => greedyByForward(model, p, 14));
      const stopTok = greedy[0][5]; // stream 0 emits it at step 5 at the latest
      const r = gen(model, PROMPTS, { temperature: 0, maxNew: 14, stop: [stopTok] });
      PROMPTS.forEach((p, b) => {
        const first = greedy[b].indexOf(stopTok);
        const want = first < 0 ? greedy[b] : greedy[b].slice(0, first + 1);
        expect(r.streams[b], `stream ${b}`).toEqual(want);
        expect(r.lengths[b]).toBe(want.length);
        expect(r.stopped[b]).toBe(first < 0 ? 0 : 1);
        expect(greedyByForward(model, p, 14, [stopTok])).toEqual(want);
      });
      expect(r.stopped[0]).toBe(1);
    });

    it("top-k = 1 and a tiny top-p equal greedy at any temperature", () => {
      const greedy = gen(model, PROMPTS, { temperature: 0 }).streams;
      expect(gen(model, PROMPTS, { temperature: 1.5, topK: 1, seed: 3 }).streams).toEqual(greedy);
      expect(gen(model, PROMPTS, { temperature: 1.5, topP: 1e-6, seed: 4 }).streams).toEqual(greedy);
    });
  });
}

describe("sampling distribution (one step, 4000 streams of one prompt)", () => {
  const B = 4000;
  const prompt = [4, 8, 15, 16];
  let model: Model;
  let logits: Float64Array;
  beforeAll(() => {
    model = randomModel({ ...base, numKvHeads: 2 }, 99, 0.6);
    const all = forwardLogits(model, Int32Array.from(prompt));
    const V = model.config.vocabSize;
    logits = Float64Array.from(all.subarray((prompt.length - 1) * V, prompt.length * V));
  });

  function freqs(opts: Partial<GenerateOptions>): number[] {
    const prompts = Array.from({ length: B }, () => prompt);
    const r = gen(model, prompts, { maxNew: 1, seed: 5, ...opts });
    const f = new Array(model.config.vocabSize).fill(0);
    for (let b = 0; b < B; b++) f[r.tokens[b]] += 1 / B;
    return f;
  }

  /** softmax(logits / T) restricted to `keep` (renormalised) */
  function dist(T: number, keep: (i: number, order: number[]) => boolean): number[] {
    const order = [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b);
    const mx = logits[order[0]];
    const p = Array.from(logits, (x, i) => (keep(i, order) ? Math.exp((x - mx) / T) : 0));
    const s = p.reduce((a, b) => a + b, 0);
    return p.map((x) => x / s);
  }

  // each frequency within 5 binomial standard deviations (+ 1e-3); seeds are fixed, so this is not flaky
  function expectMatches(f: number[], p: number[], what: string): void {
    f.forEach((fi, i) => {
      const sd = Math.sqrt((p[i] * (1 - p[i])) / B);
      expect(Math.abs(fi - p[i]), `${what}: token ${i} frequency ${fi} vs probability ${p[i]}`).toBeLessThanOrEqual(
        5 * sd + 1e-3,
      );
    });
  }

  it("the model is far from uniform, so the check means something", () => {
    const p = dist(1, () => true);
    expect(Math.max(...p)).toBeGreaterThan(0.15);
  });

  it("temperature 1 and 0.5 sample softmax(logits / T)", () => {
    expectMatches(
      freqs({ temperature: 1 }),
      dist(1, () => true),
      "T=1",
    );
    expectMatches(
      freqs({ temperature: 0.5 }),
      dist(0.5, () => true),
      "T=0.5",
    );
  });

  it("top-k keeps the k most likely tokens, renormalised", () => {
    expectMatches(
      freqs({ temperature: 1, topK: 3 }),
      dist(1, (i, order) => order.indexOf(i) < 3),
      "top-k 3",
    );
  });

  it("top-p keeps the smallest most-likely set whose probability reaches p", () => {
    const p1 = dist(1, () => true);
    const order = [...p1.keys()].sort((a, b) => p1[b] - p1[a]);
    let cum = 0;
    let n = 0;
    while (cum < 0.6) cum += p1[order[n++]];
    const nucleus = new Set(order.slice(0, n));
    expect(n, "nucleus size").toBeGreaterThan(1);
    expectMatches(
      freqs({ temperature: 1, topP: 0.6 }),
      dist(1, (i) => nucleus.has(i)),
      "top-p 0.6",
    );
  });

  it("maxDiff sanity: cached and full logits of the prompt agree", () => {
    const V = model.config.vocabSize;
    const c = model.runner.cachedLogits(Int32Array.from(prompt), 2);
    expect(maxDiff(c.subarray((prompt.length - 1) * V), logits).diff).toBeLessThan(LOGIT_TOL * maxAbs(logits));
  });
});
