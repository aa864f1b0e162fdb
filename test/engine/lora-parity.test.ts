// LoRA adapters against the PyTorch reference (dev/ref/llama_ref.py with a `lora` job: PEFT's
// result = base_layer(x) + lora_B(lora_A(x)) * scaling, base frozen, autograd gradients), on every family: logits
// and every adapter tensor's gradient; the frozen base gets none; the cached sampler path and the merged model give
// the adapted model's logits. Tolerances as in parity.test.ts.
import { describe, expect, it } from "vitest";
import type { ModelConfig } from "../../src/model/config.js";
import { LORA_TARGETS, LoraAdapter, type LoraSettings } from "../../src/model/lora.js";
import type { Model } from "../../src/model/model.js";
import { setThreads } from "../../src/model/native.js";
import { Rng } from "../../src/util/rng.js";
import { expectAllclose } from "../helpers/allclose.js";
import { type Batch, maxAbs, randomBatch, randomModel, runEngine } from "./random-model.js";
import { type RefJob, refJob, runReference } from "./reference.js";

const base: Partial<ModelConfig> = {
  vocabSize: 40,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
};

const ALL: LoraSettings = { rank: 4, alpha: 8, targets: LORA_TARGETS };

const variants: { name: string; over: Partial<ModelConfig>; lora: LoraSettings }[] = [
  { name: "llama, all seven targets", over: {}, lora: ALL },
  {
    name: "llama 3 rope, tied, q/v only (r 2, alpha 16)",
    over: {
      tied: true,
      ropeScaling: {
        type: "llama3",
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 64,
      },
    },
    lora: { rank: 2, alpha: 16, targets: ["q_proj", "v_proj"] },
  },
  { name: "mistral W=3", over: { modelType: "mistral", slidingWindow: 3 }, lora: ALL },
  { name: "qwen2 biases", over: { modelType: "qwen2", ropeTheta: 1e6 }, lora: ALL },
  {
    name: "qwen3 q/k norm, headDim 12, MLP targets only",
    over: { modelType: "qwen3", headDim: 12 },
    lora: { rank: 3, alpha: 3, targets: ["gate_proj", "up_proj", "down_proj"] },
  },
];

/** An adapter with random A and B (B = 0, PEFT's start, would make every A gradient 0 and the test vacuous). */
function randomAdapter(model: Model, lora: LoraSettings, seed: number): Model {
  const a = new LoraAdapter(model.config, lora);
  const rng = new Rng(seed);
  for (let i = 0; i < a.params.length; i++) a.params[i] = 0.3 * rng.normal();
  return model.withAdapter(a);
}

function loraJob(m: Model, b: Batch): RefJob {
  const job = refJob(m, b.tokens, b.seqLens, b.weights, "float64");
  const a = m.adapter!;
  const p = a.params;
  return {
    ...job,
    lora: {
      rank: a.settings.rank,
      alpha: a.settings.alpha,
      params: Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString("base64"),
      table: a.table.map(({ name, shape, offset, size }) => ({ name, shape, offset, size })),
    },
  };
}

const LENS = [9, 1, 17, 6];

/** The engine's logits and adapter gradients against the reference's; the frozen base has no gradient. */
function expectReference(
  model: Model,
  engine: ReturnType<typeof runEngine>,
  r: ReturnType<typeof runReference>[number],
  lora: LoraSettings,
) {
  expectAllclose(engine.logits, r.logits, { atol: 1e-4 * maxAbs(r.logits), rtol: 1e-4, what: "logits" });
  const a = model.adapter!;
  expect(engine.grads.length).toBe(a.params.length); // gradients are the adapter's alone
  expect(Object.keys(r.grads).sort()).toEqual(a.table.map((p) => p.name).sort());
  expect(a.table.length).toBe(2 * model.config.numLayers * lora.targets.length);
  for (const p of a.table) {
    const g = a.view(p.name, engine.grads);
    const scale = maxAbs(r.grads[p.name]);
    expect(scale, `${p.name}: zero reference gradient`).toBeGreaterThan(0);
    expectAllclose(g, r.grads[p.name], { atol: 1e-4 * scale, rtol: 1e-3, what: `${p.name} grad` });
  }
}

describe("LoRA vs the PyTorch reference, every family", () => {
  setThreads(2);
  const cases = variants.map((v, i) => {
    const model = randomAdapter(randomModel({ ...base, ...v.over }, 300 + i), v.lora, 400 + i);
    const batch = randomBatch(LENS, model.config.vocabSize, 500 + i);
    return { v, model, batch, engine: runEngine(model, batch) };
  });
  let refs: ReturnType<typeof runReference> | undefined;
  const ref = (i: number) => {
    refs ??= runReference(cases.map((c) => loraJob(c.model, c.batch)));
    return refs[i];
  };

  cases.forEach((c, i) => {
    describe(c.v.name, () => {
      it("logits and every adapter tensor's gradient; no base gradient", () => {
        expectReference(c.model, c.engine, ref(i), c.v.lora);
      });

      it("the cached sampler path and the merged model give the adapted logits", () => {
        const n = c.batch.seqLens[2];
        const tokens = c.batch.tokens.subarray(10, 10 + n);
        c.model.runner.forward(tokens, Int32Array.of(n));
        const want = c.model.runner.logits();
        expectAllclose(c.model.runner.cachedLogits(tokens, 5), want, { atol: 1e-4 * maxAbs(want), rtol: 1e-4 });
        const merged = c.model.merged();
        expect(merged.adapter).toBeNull();
        merged.runner.forward(tokens, Int32Array.of(n));
        expectAllclose(merged.runner.logits(), want, { atol: 1e-4 * maxAbs(want), rtol: 1e-4, what: "merged" });
        // and the adapter matters: the base alone is far from it
        const plain = c.model.withAdapter(null);
        plain.runner.forward(tokens, Int32Array.of(n));
        let d = 0;
        const got = plain.runner.logits();
        for (let j = 0; j < got.length; j++) d = Math.max(d, Math.abs(got[j] - want[j]));
        expect(d).toBeGreaterThan(1e-2 * maxAbs(want));
      });
    });
  });
});

describe("LoraAdapter.init", () => {
  it("A uniform in ±1/√in (PEFT's kaiming_uniform_(a=√5)), B zero: the adapted model starts as the base", () => {
    const model = randomModel(base, 1);
    const a = LoraAdapter.init(model.config, ALL, 7);
    for (const p of a.table) {
      const v = a.view(p.name);
      if (p.name.endsWith("lora_B.weight")) expect(maxAbs(v)).toBe(0);
      else {
        const bound = 1 / Math.sqrt(p.shape[1]);
        expect(maxAbs(v)).toBeLessThanOrEqual(bound);
        expect(maxAbs(v)).toBeGreaterThan(0.8 * bound);
      }
    }
    const tokens = Int32Array.of(1, 5, 9, 3, 7);
    model.runner.forward(tokens, Int32Array.of(5));
    const want = model.runner.logits();
    const adapted = model.withAdapter(a);
    adapted.runner.forward(tokens, Int32Array.of(5));
    expect(Array.from(adapted.runner.logits())).toEqual(Array.from(want));
  });
});

// kernels/lora.cc splits its products over the threads when the side split is at least 64 (tokens, a target's
// in or out features); the cases above are too small for that, so one larger layer checks the split parts.
describe("LoRA products split over two threads", () => {
  it("a batch of 70 tokens through 96- and 128-wide projections matches the reference", () => {
    setThreads(2);
    const model = randomAdapter(
      randomModel({ ...base, hiddenSize: 96, intermediateSize: 128, numLayers: 1 }, 310),
      ALL,
      410,
    );
    const batch = randomBatch([40, 30], model.config.vocabSize, 510);
    const engine = runEngine(model, batch);
    expectReference(model, engine, runReference([loraJob(model, batch)])[0], ALL);
  });
});
