/** A tiny random model with the SPEC §7 char tokenizer and a toy QA file: the fixture of the trainer tests. */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveFields } from "../../src/config/schema.js";
import { type TrainConfig, trainFields } from "../../src/config/train-config.js";
import { saveModelDir } from "../../src/io/model-dir.js";
import { llamaConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { CHAR_IDS, CHAR_VOCAB_SIZE, charTokenizerJson } from "../../src/tokenizer/char-tokenizer-json.js";
import { isTimingKey } from "../../src/train/trainer.js";

/** The toy questions of test/train (SPEC §7's form), one JSON object each. */
export const QA_LINES = ["a1,b+2;b", "a3,b*2;b", "a5,b+1;b", "a2,b*3;b", "a7,b+3;b", "a4,b+4;b"].map((q) => {
  const [a, op, x] = [Number(q[1]), q[4], Number(q[5])];
  const v = op === "+" ? (a + x) % 10 : (a * x) % 10;
  return JSON.stringify({ question: q, answer: `b=${v}` });
});

/** The tiny random Llama of the trainer tests (char vocabulary, 2 layers, hidden 32, GQA), from `seed`. */
export function tinyModel(seed = 3): Model {
  const cfg = llamaConfig({
    vocabSize: CHAR_VOCAB_SIZE,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 2,
    numKvHeads: 1,
    intermediateSize: 64,
    bosTokenId: CHAR_IDS.bos,
    eosTokenId: CHAR_IDS.eos,
    answerStartTokenId: CHAR_IDS.answerStart,
  });
  return Model.init(cfg, seed, 0.1);
}

/** A fresh temp directory holding `model/` (tiny random Llama, char tokenizer) and `train.jsonl`. */
export function setup(prefix = "nrt-tiny-"): { dir: string; model: string; data: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const model = join(dir, "model");
  saveModelDir(model, tinyModel(), { "tokenizer.json": JSON.stringify(charTokenizerJson()) });
  const data = join(dir, "train.jsonl");
  writeFileSync(data, `${QA_LINES.join("\n")}\n`);
  return { dir, model, data };
}

/** Small, fast settings (as in test/train) over the schema's defaults. */
export const TINY = { progress: false, threads: 1, groupSize: 4, promptsPerStep: 3, maxTraceTokens: 8, lr: 3e-3 };

/** `nrt train` settings: TINY, then `over`, over the schema's defaults. */
export function tinyConfig(over: Record<string, unknown>): TrainConfig {
  return resolveFields(trainFields, undefined, { ...TINY, ...over }, "test") as TrainConfig;
}

/** A run's metrics.jsonl, one object a step. */
export function runMetrics(out: string): Record<string, number>[] {
  return readFileSync(join(out, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** A step's metrics without its timing fields ("identical metrics", SPEC §8). */
export const withoutTiming = (m: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(m).filter(([k]) => !isTimingKey(k)));
