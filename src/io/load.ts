import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NrtError } from "../errors.js";
import type { Model } from "../model/model.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { loadModelDir, resolveModelDir } from "./model-dir.js";

export const TOKENIZER_FILE = "tokenizer.json";

/** A model with its tokenizer, from a model directory or a run directory (SPEC §8). */
export interface LoadedModel {
  dir: string;
  model: Model;
  tokenizer: Tokenizer;
  /** the raw tokenizer.json text, to copy into the directories nrt writes */
  tokenizerJson: string;
}

/** Loads `path` (model directory, or run directory → final/ or latest checkpoint) with its tokenizer.json. */
export function loadModel(path: string): LoadedModel {
  const dir = resolveModelDir(path);
  const { model, config } = loadModelDir(dir);
  const tp = join(dir, TOKENIZER_FILE);
  if (!existsSync(tp)) throw new NrtError(`missing ${TOKENIZER_FILE} (nrt needs the model's tokenizer)`, tp);
  const tokenizerJson = readFileSync(tp, "utf8");
  const tokenizer = Tokenizer.fromJson(tokenizerJson, tp, { bosId: config.bosTokenId, eosId: config.eosTokenId });
  if (tokenizer.vocabSize > config.vocabSize)
    throw new NrtError(
      `tokenizer has ${tokenizer.vocabSize} ids but the model's vocab_size is ${config.vocabSize}`,
      tp,
    );
  return { dir, model, tokenizer, tokenizerJson };
}
