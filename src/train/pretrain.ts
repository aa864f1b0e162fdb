/**
 * Pretraining a base model from scratch on a reasoning world (SPEC §7): sequences
 * ⟨bos⟩ question [trace] ⟨answer_start⟩ answer ⟨eos⟩ with the trace shown in a fraction of examples, loss on all
 * tokens, fresh questions every step from a seeded stream (never a reserved one). Reproducible per seed and
 * thread count; writes metrics.jsonl, checkpoints and `final/` like `nrt train`.
 */

import { join } from "node:path";
import { NrtError } from "../errors.js";
import { appendNoFollow } from "../io/append.js";
import { saveModelDir } from "../io/model-dir.js";
import { llamaConfig, type ModelConfig } from "../model/config.js";
import { Model } from "../model/model.js";
import { setThreads } from "../model/native.js";
import { CHAR_IDS, charTokenizerJson, charVocabSize } from "../tokenizer/char-tokenizer-json.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { Progress } from "../util/progress.js";
import { Rng } from "../util/rng.js";
import { drawRecord, minK } from "../world/chain.js";
import type { WorldName } from "../world/question.js";
import { saveCheckpoint } from "./checkpoint.js";
import { AdamW } from "./optimizer.js";
import { createRunDir, METRICS_FILE, RUN_CONFIG } from "./run-dir.js";

export interface PretrainConfig {
  world: WorldName;
  out: string;
  steps: number;
  batchSize: number;
  /** fraction of examples that show the trace */
  traceFraction: number;
  kMin: number;
  kMax: number;
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  weightDecay: number;
  seed: number;
  threads: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  checkpointEvery: number;
  progress: boolean;
}

/** The prototype's recipe (reference/prototype.md): ~0.66 M parameters, 10,000 steps × 32, lr 2e-3 cosine. */
export function defaultPretrainConfig(world: WorldName, out: string): PretrainConfig {
  return {
    world,
    out,
    steps: 10_000,
    batchSize: 32,
    traceFraction: 0.25,
    kMin: minK(world),
    kMax: 6,
    lr: 2e-3,
    warmupSteps: 100,
    minLrRatio: 0.1,
    weightDecay: 0.01,
    seed: 0,
    threads: 1,
    hiddenSize: 128,
    numLayers: 4,
    numHeads: 4,
    intermediateSize: 256,
    checkpointEvery: 1000,
    progress: true,
  };
}

export function worldModelConfig(c: PretrainConfig): ModelConfig {
  return llamaConfig({
    vocabSize: charVocabSize(c.world),
    hiddenSize: c.hiddenSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    numKvHeads: c.numHeads,
    intermediateSize: c.intermediateSize,
    // chainlong's answers are long: a k = 10 record takes ~320 tokens with its trace
    maxPositionEmbeddings: c.world === "chainlong" ? 512 : 256,
    bosTokenId: CHAR_IDS.bos,
    eosTokenId: CHAR_IDS.eos,
    answerStartTokenId: CHAR_IDS.answerStart,
  });
}

/** Trains a base model for a world from scratch; returns the final model directory. */
export function pretrain(c: PretrainConfig, onStep?: (step: number, loss: number) => void): string {
  const lock = createRunDir(c.out, { [RUN_CONFIG]: `${JSON.stringify({ pretrain: c }, null, 2)}\n` });
  try {
    return pretrainLocked(c, onStep);
  } finally {
    lock.release();
  }
}

function pretrainLocked(c: PretrainConfig, onStep?: (step: number, loss: number) => void): string {
  setThreads(c.threads);
  const tokJson = JSON.stringify(charTokenizerJson(c.world));
  const tok = Tokenizer.fromJson(tokJson, "char tokenizer");
  const model = Model.init(worldModelConfig(c), c.seed + 1);
  const opt = new AdamW(
    model,
    { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: c.weightDecay, clip: 1 },
    { lr: c.lr, warmupSteps: c.warmupSteps, totalSteps: c.steps, kind: "cosine", minRatio: c.minLrRatio },
  );
  const rng = new Rng(c.seed);
  const progress = new Progress(`pretrain ${c.world}`, c.steps, c.progress);
  let ema = 0;
  for (let step = 1; step <= c.steps; step++) {
    const tokens: number[] = [];
    const lens: number[] = [];
    for (let b = 0; b < c.batchSize; b++) {
      const showTrace = rng.next() < c.traceFraction;
      const r = drawRecord(rng, c.world, "train", [c.kMin, c.kMax], true);
      const seq = [
        CHAR_IDS.bos,
        ...tok.encode(r.question),
        ...(showTrace ? tok.encode(r.trace ?? "") : []),
        CHAR_IDS.answerStart,
        ...tok.encode(r.answer),
        CHAR_IDS.eos,
      ];
      tokens.push(...seq);
      lens.push(seq.length);
    }
    const targets = tokens.length - lens.length;
    const w = new Float32Array(tokens.length).fill(1 / targets);
    model.runner.forward(Int32Array.from(tokens), Int32Array.from(lens));
    opt.zeroGrad();
    const loss = model.runner.backward(w, opt.grads);
    if (!Number.isFinite(loss)) throw new NrtError(`non-finite loss at step ${step}`, c.out);
    const { lr, gradNorm } = opt.update();
    ema = step === 1 ? loss : 0.98 * ema + 0.02 * loss;
    appendNoFollow(join(c.out, METRICS_FILE), `${JSON.stringify({ step, loss, lr, grad_norm: gradNorm })}\n`);
    progress.update(step, { loss: ema });
    onStep?.(step, loss);
    if (step % c.checkpointEvery === 0 && step < c.steps)
      saveCheckpoint(
        c.out,
        model,
        { "tokenizer.json": tokJson },
        opt,
        { step, nanSkipped: 0, extra: { rng: rng.state() } },
        1,
      );
  }
  progress.done();
  const final = join(c.out, "final");
  saveModelDir(final, model, { "tokenizer.json": tokJson });
  return final;
}
