// One small random checkpoint per model family (SPEC §6), built around a real tokenizer from test/fixtures/tokenizers
// (Llama-3's for the Llama family, plain and with either RoPE scaling; Qwen2's with the Qwen2.5 chat template for
// Qwen2 and Qwen3), in float32 or bfloat16. Weights are random but far from uniform (matrices N(0, 0.35²), norms 1 + N(0, 0.2²), biases N(0, 0.3²)),
// so that greedy continuations are decided by clear margins. Not a test file.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { saveModelDir } from "../../src/io/model-dir.js";
import { llamaConfig, type ModelConfig } from "../../src/model/config.js";
import { Model } from "../../src/model/model.js";
import { Rng } from "../../src/util/rng.js";
import { toBf16Dir } from "./bf16.js";

const TOKENIZERS = fileURLToPath(new URL("../fixtures/tokenizers/", import.meta.url));

export interface FamilyFixture {
  name: string;
  tokenizer: "llama3" | "qwen2";
  over: Partial<ModelConfig>;
  /** the weights' seed (default 1), chosen where needed so that greedy runs do not stop within 32 tokens */
  seed?: number;
}

/** Llama-3's specials, after the cropped vocabulary's 2,000 ids (the real ones sit at 128000 and 128001) */
const LLAMA3_BOS = 2000;
const LLAMA3_EOS = 2001;
/** Qwen2's: no ⟨bos⟩; `<|im_end|>` ends a turn (the Qwen2.5 tokenizer_config's eos_token) */
const QWEN_EOS = 2002;

const small = { hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2 };
export const FAMILY_FIXTURES: FamilyFixture[] = [
  {
    name: "llama",
    tokenizer: "llama3",
    over: { ...small, ropeTheta: 5e5, vocabSize: 2002, bosTokenId: LLAMA3_BOS, eosTokenId: LLAMA3_EOS },
    seed: 3,
  },
  {
    // head size 16, theta 1e4, original context 64: wavelengths 6.3 (kept), 20 and 63 (blended), the rest / 8
    name: "llama-rope-llama3",
    tokenizer: "llama3",
    over: {
      ...small,
      ropeScaling: {
        type: "llama3",
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 64,
      },
      vocabSize: 2002,
      bosTokenId: LLAMA3_BOS,
      eosTokenId: LLAMA3_EOS,
    },
  },
  {
    name: "llama-rope-linear",
    tokenizer: "llama3",
    over: {
      ...small,
      tied: true,
      ropeScaling: { type: "linear", factor: 4 },
      vocabSize: 2002,
      bosTokenId: LLAMA3_BOS,
      eosTokenId: LLAMA3_EOS,
    },
  },
  {
    name: "qwen2",
    tokenizer: "qwen2",
    over: {
      ...small,
      modelType: "qwen2",
      tied: true,
      ropeTheta: 1e6,
      rmsNormEps: 1e-6,
      vocabSize: 2003,
      eosTokenId: QWEN_EOS,
    },
  },
  {
    // head_dim 32: q is 128 wide against a hidden size of 64, as Qwen3's explicit head_dim allows
    name: "qwen3",
    tokenizer: "qwen2",
    over: {
      ...small,
      modelType: "qwen3",
      headDim: 32,
      ropeTheta: 1e6,
      rmsNormEps: 1e-6,
      vocabSize: 2003,
      eosTokenId: QWEN_EOS,
    },
  },
];

/** The fixture's tokenizer files: tokenizer.json (with Llama-3's two specials added) and, for Qwen, its config. */
export function tokenizerFiles(f: FamilyFixture): Record<string, string> {
  const json = JSON.parse(readFileSync(join(TOKENIZERS, f.tokenizer, "tokenizer.json"), "utf8"));
  if (f.tokenizer === "llama3") {
    const special = (id: number, content: string) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    json.added_tokens = [special(LLAMA3_BOS, "<|begin_of_text|>"), special(LLAMA3_EOS, "<|end_of_text|>")];
    return { "tokenizer.json": JSON.stringify(json) };
  }
  return {
    "tokenizer.json": JSON.stringify(json),
    "tokenizer_config.json": readFileSync(join(TOKENIZERS, f.tokenizer, "tokenizer_config.json"), "utf8"),
  };
}

/** The fixture's random model, deterministic in `seed`. */
export function familyModel(f: FamilyFixture, seed = f.seed ?? 1): Model {
  const model = new Model(llamaConfig({ maxPositionEmbeddings: 256, ...f.over }));
  const rng = new Rng(seed);
  for (const p of model.table) {
    const v = model.view(p.name);
    const bias = p.name.endsWith(".bias");
    const norm = p.shape.length === 1 && !bias;
    for (let i = 0; i < v.length; i++) v[i] = norm ? 1 + 0.2 * rng.normal() : (bias ? 0.3 : 0.35) * rng.normal();
  }
  return model;
}

/** Writes the fixture as a model directory at `dir` (float32, or bfloat16 tensors); returns its model. */
export function writeFamilyDir(
  dir: string,
  f: FamilyFixture,
  dtype: "float32" | "bfloat16",
  seed = f.seed ?? 1,
): Model {
  const model = familyModel(f, seed);
  saveModelDir(dir, model, tokenizerFiles(f));
  if (dtype === "bfloat16") toBf16Dir(dir);
  return model;
}
