// The nrt side of the benchmark, in process, over the built library (dist/) and addon.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { llamaConfig } from "../dist/model/config.js";
import { Model } from "../dist/model/model.js";
import { native } from "../dist/model/native.js";

/** Thread settings tried for nrt (OpenMP kernels and OpenBLAS together); the fastest one is reported. */
export const NRT_SETTINGS = [{ threads: 1 }, { threads: 2 }];

export function nrtLabel(s) {
  return `setThreads(${s.threads})`;
}

export function modelConfig(ref) {
  return llamaConfig({
    vocabSize: ref.vocabSize,
    hiddenSize: ref.hiddenSize,
    numLayers: ref.numLayers,
    numHeads: ref.numHeads,
    numKvHeads: ref.numHeads,
    intermediateSize: ref.intermediateSize,
    rmsNormEps: ref.rmsNormEps,
    ropeTheta: ref.ropeTheta,
  });
}

export const ADAMW = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, clip: 1 };

/** Training on one fixed batch of `ref.batch` sequences of `ref.seqLen` tokens, mean next-token loss. */
export class NrtTrainer {
  constructor(ref) {
    this.model = Model.init(modelConfig(ref), 1);
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
    model.engine.forward(this.tokens, this.lens);
    grads.fill(0);
    const loss = model.engine.backward(this.weights, grads);
    native().adamw(model.config, model.params, grads, this.m, this.v, { ...ADAMW, step: ++this.t });
    return loss;
  }
}

export class NrtBench {
  constructor(ref) {
    this.ref = ref;
    this.trainer = undefined;
    this.sampler = undefined;
  }

  sgemm(setting, n, reps) {
    native().setThreads(setting.threads);
    return Array.from(native().benchSgemm(n, reps));
  }

  train(setting, reps) {
    native().setThreads(setting.threads);
    this.trainer ??= new NrtTrainer(this.ref);
    const out = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      this.trainer.step();
      out.push(performance.now() - t0);
    }
    return out;
  }

  sample(setting, reps) {
    const { ref } = this;
    native().setThreads(setting.threads);
    this.sampler ??= Model.init(modelConfig(ref), 2);
    const B = ref.streams;
    const P = ref.promptLen;
    const prompts = new Int32Array(B * P).map((_, t) => (Math.floor(t / P) * 31 + (t % P) * 7) % ref.vocabSize);
    const lens = new Int32Array(B).fill(P);
    const out = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      this.sampler.engine.generate(prompts, lens, {
        maxNew: ref.maxNew,
        temperature: ref.temperature,
        seed: r,
        stop: [],
      });
      out.push((B * ref.maxNew) / ((performance.now() - t0) / 1e3));
    }
    return out;
  }
}

/** Peak RSS (MB) of a separate node process (rss_nrt.js) training `steps` steps. */
export function nrtTrainRss(setting, ref, steps) {
  const script = fileURLToPath(new URL("./rss_nrt.js", import.meta.url));
  const r = spawnSync(process.execPath, [script, JSON.stringify({ ref, steps, threads: setting.threads })], {
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`rss_nrt.js failed: ${r.stderr}`);
  return JSON.parse(r.stdout).maxrss_mb;
}
