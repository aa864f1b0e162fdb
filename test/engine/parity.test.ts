// Parity of the native engine with an independent PyTorch implementation (dev/ref/llama_ref.py, autograd
// gradients): logits, logprobs, entropy, loss and every parameter's gradient, tensor by tensor, on random small
// models covering each architecture option. Python is spawned live; without /usr/bin/python3 + torch the suite FAILS.
//
// Tolerances. The engine computes in float32; it is compared with the float64 reference, whose own float32 mode
// shows the rounding noise floor of an honest float32 implementation (reported in the table printed at the end).
// Sums here have at most a few hundred terms, so float32 rounding leaves relative errors around 1e-6 of a
// tensor's scale; we allow 1e-4 of the scale (atol = 1e-4 · max|ref|, plus rtol 1e-3 elementwise), 30-100x above
// the noise measured, while a wrong sign, a missing term or a mask off by one moves entries by O(1) of the scale
// (the negative controls below check that such a change is far outside the tolerance).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModelDir } from "../../src/io/model-dir.js";
import type { ModelConfig } from "../../src/model/config.js";
import type { Model } from "../../src/model/model.js";
import { setThreads } from "../../src/model/native.js";
import { expectAllclose, maxDiff } from "../helpers/allclose.js";
import { FAMILY_FIXTURES, writeFamilyDir } from "../helpers/family-models.js";
import { type Batch, type EngineRun, maxAbs, randomBatch, randomModel, runEngine } from "./random-model.js";
import { type RefResult, refJob, runReference } from "./reference.js";

const base: Partial<ModelConfig> = {
  vocabSize: 40,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 4,
};

const LLAMA3 = {
  type: "llama3",
  factor: 8,
  lowFreqFactor: 2,
  highFreqFactor: 16,
  originalMaxPositionEmbeddings: 512,
} as const;

interface Variant {
  name: string;
  over: Partial<ModelConfig>;
}

const variants: Variant[] = [
  { name: "untied MHA", over: {} },
  { name: "GQA 4q/2kv, theta 100", over: { numKvHeads: 2, ropeTheta: 100 } },
  { name: "MQA 4q/1kv", over: { numKvHeads: 1, rmsNormEps: 1e-6 } },
  { name: "tied embeddings, rmsNormEps 1e-2", over: { tied: true, rmsNormEps: 1e-2 } },
  { name: "headDim 12 (Q 48 != C 32), GQA", over: { headDim: 12, numKvHeads: 2 } },
  { name: "headDim 4 (Q 16 < C 32)", over: { headDim: 4, numLayers: 3 } },
  { name: "mistral W=3 < lengths, GQA", over: { modelType: "mistral", slidingWindow: 3, numKvHeads: 2 } },
  { name: "mistral W=1 (self only), tied", over: { modelType: "mistral", slidingWindow: 1, tied: true } },
  { name: "mistral W=64 > lengths", over: { modelType: "mistral", slidingWindow: 64 } },
  // llama3 with HS 8, theta 1e4: wavelengths 6.3 (kept), 63 (blended), 628 and 6283 (divided by 8)
  { name: "llama rope_scaling llama3", over: { ropeScaling: LLAMA3 } },
  { name: "llama rope_scaling linear 4, GQA", over: { ropeScaling: { type: "linear", factor: 4 }, numKvHeads: 2 } },
  { name: "qwen2 q/k/v biases, GQA", over: { modelType: "qwen2", numKvHeads: 2, ropeTheta: 1e6 } },
  {
    name: "qwen2 window W=3 on layers >= 1",
    over: { modelType: "qwen2", slidingWindow: 3, maxWindowLayers: 1, numLayers: 3 },
  },
  { name: "qwen3 q/k norm, headDim 12, GQA", over: { modelType: "qwen3", headDim: 12, numKvHeads: 2 } },
  { name: "qwen3 tied, llama3 rope", over: { modelType: "qwen3", tied: true, ropeScaling: LLAMA3 } },
];

// four packed sequences, one of them a single token (no prediction, its weight must be ignored)
const LENS = [9, 1, 24, 6];

interface Case {
  v: Variant;
  model: Model;
  batch: Batch;
  engine: EngineRun;
  ref64: RefResult;
  ref32: RefResult;
}

const report: Record<string, Record<string, string>> = {};
let loaded: { cases: Case[]; controls: RefResult[] } | undefined;
let failure: unknown;

/**
 * Runs the engine and (once, in one python process) the reference on every variant. Called by each test rather
 * than in beforeAll, so that a missing python or torch FAILS every test with the reason instead of skipping them.
 */
function load(): { cases: Case[]; controls: RefResult[] } {
  if (loaded) return loaded;
  if (failure) throw failure;
  setThreads(2); // exercise the OpenMP paths (races would show up as mismatches)
  const cases: Case[] = [];
  const jobs = [];
  for (const [i, v] of variants.entries()) {
    const model = randomModel({ ...base, ...v.over }, 100 + i);
    const batch = randomBatch(LENS, model.config.vocabSize, 200 + i);
    const engine = runEngine(model, batch);
    cases.push({ v, model, batch, engine, ref64: undefined as never, ref32: undefined as never });
    jobs.push(refJob(model, batch.tokens, batch.seqLens, batch.weights, "float64"));
    jobs.push(refJob(model, batch.tokens, batch.seqLens, batch.weights, "float32"));
  }
  // negative controls: the W=3 model's batch under windows 2 and 4 and under full attention
  const w3 = cases.find((c) => c.model.config.slidingWindow === 3)!;
  for (const slidingWindow of [2, 4, 0]) {
    const config = { ...w3.model.config, slidingWindow };
    jobs.push(refJob(w3.model, w3.batch.tokens, w3.batch.seqLens, w3.batch.weights, "float64", config));
  }
  // and the llama3-scaled model without its scaling; the windowed qwen2 model with the window on every layer
  const l3 = cases.find((c) => c.v.name === "llama rope_scaling llama3")!;
  jobs.push(
    refJob(l3.model, l3.batch.tokens, l3.batch.seqLens, l3.batch.weights, "float64", {
      ...l3.model.config,
      ropeScaling: null,
    }),
  );
  const q2 = cases.find((c) => c.v.name === "qwen2 window W=3 on layers >= 1")!;
  jobs.push(
    refJob(q2.model, q2.batch.tokens, q2.batch.seqLens, q2.batch.weights, "float64", {
      ...q2.model.config,
      maxWindowLayers: 0,
    }),
  );
  let results: RefResult[];
  try {
    results = runReference(jobs);
  } catch (e) {
    failure = e;
    throw e;
  }
  cases.forEach((c, i) => {
    c.ref64 = results[2 * i];
    c.ref32 = results[2 * i + 1];
  });
  loaded = { cases, controls: results.slice(2 * cases.length) };
  return loaded;
}

afterAll(() => {
  if (Object.keys(report).length === 0) return;
  const cols = [...new Set(Object.values(report).flatMap((r) => Object.keys(r)))];
  const w = Math.max(...Object.keys(report).map((k) => k.length));
  const lines = [
    "max |engine − float64 reference| per variant (grad: worst tensor, absolute and relative to its max|g|;",
    "ref32: the reference's own float32 run against its float64 run, the noise floor for scale)",
    `${"".padEnd(w)}  ${cols.map((c) => c.padStart(16)).join("")}`,
    ...Object.entries(report).map(([k, r]) => `${k.padEnd(w)}  ${cols.map((c) => (r[c] ?? "").padStart(16)).join("")}`),
  ];
  console.log(lines.join("\n"));
});

function note(name: string, key: string, value: number): void {
  report[name] ??= {};
  report[name][key] = value.toExponential(1);
}

describe("engine vs PyTorch reference (float64)", () => {
  for (const v of variants) {
    describe(v.name, () => {
      const get = () => load().cases.find((c) => c.v === v)!;

      it("logits, logprobs, entropy and loss", () => {
        const { engine, ref64, ref32, batch } = get();
        const scale = maxAbs(ref64.logits);
        note(v.name, "logits", maxDiff(engine.logits, ref64.logits).diff);
        note(v.name, "logprobs", maxDiff(engine.logprobs, ref64.logprobs).diff);
        note(v.name, "entropy", maxDiff(engine.entropy, ref64.entropy).diff);
        note(v.name, "loss", Math.abs(engine.loss - ref64.loss));
        note(v.name, "ref32 logits", maxDiff(ref32.logits, ref64.logits).diff);
        expectAllclose(engine.logits, ref64.logits, { atol: 1e-4 * scale, rtol: 1e-4, what: `${v.name} logits` });
        expectAllclose(engine.logprobs, ref64.logprobs, { atol: 1e-4, rtol: 1e-4, what: `${v.name} logprobs` });
        expectAllclose(engine.entropy, ref64.entropy, { atol: 1e-4, rtol: 1e-4, what: `${v.name} entropy` });
        // the loss sums |w| ≤ 1 times ~N logprobs
        expectAllclose([engine.loss], [ref64.loss], { atol: 1e-4 * batch.tokens.length, rtol: 0, what: "loss" });
        // first token of every sequence: logprob and entropy exactly 0
        let start = 0;
        for (const n of batch.seqLens) {
          expect(engine.logprobs[start]).toBe(0);
          expect(engine.entropy[start]).toBe(0);
          start += n;
        }
      });

      it("every parameter's gradient", () => {
        const { model, engine, ref64, ref32 } = get();
        const names = Object.keys(ref64.grads).sort();
        expect(names).toEqual(model.table.map((p) => p.name).sort());
        let worstAbs = 0;
        let worstRel = 0;
        let worstRef32 = 0;
        for (const name of names) {
          const g = model.view(name, engine.grads);
          const r = ref64.grads[name];
          const scale = maxAbs(r);
          if (v.over.slidingWindow === 1 && /[qk]_proj/.test(name)) {
            // attending to itself only, softmax over one key is constant: q and k get no gradient at all
            expect(maxAbs(g), `${name} with W=1`).toBeLessThan(1e-7);
            continue;
          }
          expect(scale, `${name} has a zero reference gradient; the test would be vacuous`).toBeGreaterThan(0);
          const d = maxDiff(g, r).diff;
          worstAbs = Math.max(worstAbs, d);
          worstRel = Math.max(worstRel, d / scale);
          worstRef32 = Math.max(worstRef32, maxDiff(ref32.grads[name], r).diff / scale);
          expectAllclose(g, r, { atol: 1e-4 * scale, rtol: 1e-3, what: `${v.name} ${name} grad (scale ${scale})` });
        }
        note(v.name, "grad abs", worstAbs);
        note(v.name, "grad rel", worstRel);
        note(v.name, "ref32 grad rel", worstRef32);
      });
    });
  }

  it("a window longer than every sequence equals full causal attention, bit for bit", () => {
    const long = load().cases.find((c) => c.model.config.slidingWindow === 64)!;
    const full = runEngine(
      randomModel({ ...base, modelType: "mistral", slidingWindow: 0 }, 100 + variants.indexOf(long.v)),
      long.batch,
    );
    expectAllclose(full.logits, long.engine.logits, { atol: 0, rtol: 0, what: "W=64 vs W=0 logits" });
    expectAllclose(full.grads, long.engine.grads, { atol: 0, rtol: 0, what: "W=64 vs W=0 grads" });
  });

  it("negative controls: other windows, no RoPE scaling, the window on every layer are far outside the tolerance", () => {
    const { cases, controls } = load();
    const w3 = cases.find((c) => c.model.config.slidingWindow === 3)!;
    const tol = 1e-4 * maxAbs(w3.ref64.logits);
    for (const [i, w] of [2, 4, 0].entries()) {
      const d = maxDiff(w3.engine.logits, controls[i].logits).diff;
      expect(d, `window ${w} vs 3: logits differ by only ${d}`).toBeGreaterThan(100 * tol);
    }
    for (const [i, name] of ["llama rope_scaling llama3", "qwen2 window W=3 on layers >= 1"].entries()) {
      const c = cases.find((x) => x.v.name === name)!;
      const d = maxDiff(c.engine.logits, controls[3 + i].logits).diff;
      expect(d, `${name} without its option: logits differ by only ${d}`).toBeGreaterThan(
        100 * 1e-4 * maxAbs(c.ref64.logits),
      );
    }
  });
});

// Each family's checkpoint as published, in bfloat16 (test/helpers/family-models.ts, real tokenizers' vocab sizes):
// read from the file, the engine's logits and every gradient match the reference run on the same numbers.
describe("bfloat16 checkpoints of each family vs PyTorch reference (float64)", () => {
  let runs: { name: string; model: Model; engine: EngineRun; ref: RefResult }[] | undefined;
  const get = () => {
    if (runs) return runs;
    const tmp = mkdtempSync(join(tmpdir(), "nrt-parity-bf16-"));
    try {
      const cases = FAMILY_FIXTURES.map((f, i) => {
        const dir = join(tmp, f.name);
        writeFamilyDir(dir, f, "bfloat16", 300 + i);
        const model = loadModelDir(dir).model;
        const batch = randomBatch([7, 1, 20], model.config.vocabSize, 400 + i);
        return { name: f.name, model, batch, engine: runEngine(model, batch) };
      });
      const refs = runReference(
        cases.map((c) => refJob(c.model, c.batch.tokens, c.batch.seqLens, c.batch.weights, "float64")),
      );
      runs = cases.map((c, i) => ({ ...c, ref: refs[i] }));
      return runs;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  };
  for (const f of FAMILY_FIXTURES) {
    it(`${f.name}: bf16 values read, logits and every gradient match`, () => {
      const { model, engine, ref } = get().find((r) => r.name === f.name)!;
      // every parameter is a bfloat16 number (its low 16 bits are zero)
      const bits = new Uint32Array(model.params.buffer, model.params.byteOffset, model.params.length);
      expect(bits.every((b) => (b & 0xffff) === 0)).toBe(true);
      const name = `${f.name} bf16`;
      note(name, "logits", maxDiff(engine.logits, ref.logits).diff);
      expectAllclose(engine.logits, ref.logits, {
        atol: 1e-4 * maxAbs(ref.logits),
        rtol: 1e-4,
        what: `${name} logits`,
      });
      let worstAbs = 0;
      let worstRel = 0;
      for (const p of model.table) {
        const r = ref.grads[p.name];
        const scale = maxAbs(r);
        expect(scale, `${p.name} has a zero reference gradient`).toBeGreaterThan(0);
        const d = maxDiff(model.view(p.name, engine.grads), r).diff;
        worstAbs = Math.max(worstAbs, d);
        worstRel = Math.max(worstRel, d / scale);
        expectAllclose(model.view(p.name, engine.grads), r, {
          atol: 1e-4 * scale,
          rtol: 1e-3,
          what: `${name} ${p.name}`,
        });
      }
      note(name, "grad abs", worstAbs);
      note(name, "grad rel", worstRel);
    });
  }
});
