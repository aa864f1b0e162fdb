/** A tiny random model with the SPEC §7 char tokenizer and a toy QA file: the fixture of the trainer tests. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { saveModelDir } from "../../src/io/model-dir.js";
import { llamaConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { CHAR_IDS, CHAR_VOCAB_SIZE, charTokenizerJson } from "../../src/tokenizer/char-tokenizer-json.js";

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
