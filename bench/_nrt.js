// The nrt workloads of the benchmark, over the built library (dist/) and addon; run in nrt_worker.js.
import { loadModelDir } from "../dist/io/model-dir.js";
import { llamaConfig } from "../dist/model/config.js";
import { LORA_TARGETS, LoraAdapter } from "../dist/model/lora.js";
import { Model } from "../dist/model/model.js";
import { native } from "../dist/model/native.js";

/** nrt's ModelConfig for one of run.js's model descriptions (Llama; untied and as many kv heads as heads unless
 * `tied` and `numKvHeads` say otherwise). */
export function modelConfig(ref) {
  return llamaConfig({
    vocabSize: ref.vocabSize,
    hiddenSize: ref.hiddenSize,
    numLayers: ref.numLayers,
    numHeads: ref.numHeads,
    numKvHeads: ref.numKvHeads ?? ref.numHeads,
    tied: ref.tied ?? false,
    intermediateSize: ref.intermediateSize,
    rmsNormEps: ref.rmsNormEps,
    ropeTheta: ref.ropeTheta,
    ...(ref.maxPositionEmbeddings ? { maxPositionEmbeddings: ref.maxPositionEmbeddings } : {}),
  });
}

/** The weights a sampling benchmark runs: Model.init(config, seed 2) (std 0.02), or a model directory's. */
export const SAMPLE_SEED = 2;

export const ADAMW = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, clip: 1 };

/**
 * Training on one fixed batch of `ref.batch` sequences of `ref.seqLen` tokens, mean next-token loss; with
 * `ref.lora` ({rank, alpha}) a LoRA adapter on the seven projections over the frozen model (PEFT's initialisation).
 */
export class NrtTrainer {
  constructor(ref) {
    const base = Model.init(modelConfig(ref), 1);
    this.model = ref.lora
      ? base.withAdapter(LoraAdapter.init(base.config, { ...ref.lora, targets: LORA_TARGETS }, 1))
      : base;
    const N = ref.batch * ref.seqLen;
    this.tokens = new Int32Array(N).map((_, i) => (i * 7919) % ref.vocabSize);
    this.lens = new Int32Array(ref.batch).fill(ref.seqLen);
    this.weights = new Float32Array(N).fill(1 / (ref.batch * (ref.seqLen - 1)));
    this.grads = this.model.zeros();
    this.m = this.model.zeros();
    this.v = this.model.zeros();
    this.t = 0;
  }

  /** one forward, backward and AdamW step; returns the loss */
  step() {
    const { model, grads } = this;
    model.runner.forward(this.tokens, this.lens);
    grads.fill(0);
    const loss = model.runner.backward(this.weights, grads);
    native().adamw(model.nativeConfig, model.trainable, grads, this.m, this.v, { ...ADAMW, step: ++this.t });
    return loss;
  }
}

export class NrtBench {
  constructor(ref) {
    this.ref = ref;
    this.trainer = undefined;
    this.sampler = undefined;
  }

  /** ms per training step, `reps` steps */
  train(reps) {
    this.trainer ??= new NrtTrainer(this.ref);
    const out = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      this.trainer.step();
      out.push(performance.now() - t0);
    }
    return out;
  }

  /**
   * tokens/s of `reps` runs of generate(): `streams` prompts of `promptLen` tokens, `maxNew` new tokens each
   * (temperature `ref.temperature`, no top-k / top-p, the whole vocabulary). The weights are Model.init's, or
   * those of the model directory `modelDir` (bench/write-model.js wrote it with the same ones).
   */
  sample(reps, { modelDir, maxNew = this.ref.maxNew } = {}) {
    const { ref } = this;
    this.sampler ??= modelDir ? loadModelDir(modelDir).model : Model.init(modelConfig(ref), SAMPLE_SEED);
    const B = ref.streams;
    const P = ref.promptLen;
    const prompts = new Int32Array(B * P).map((_, t) => (Math.floor(t / P) * 31 + (t % P) * 7) % ref.vocabSize);
    const lens = new Int32Array(B).fill(P);
    const out = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      this.sampler.runner.generate(prompts, lens, {
        maxNew,
        temperature: ref.temperature,
        seed: r,
        stop: [],
      });
      out.push((B * maxNew) / ((performance.now() - t0) / 1e3));
    }
    return out;
  }
}
