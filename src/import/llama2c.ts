/** `nrt import llama2c`: a llama2.c checkpoint and its tokenizer → a SPEC §6 model directory. */

import { saveModelDir } from "../io/model-dir.js";
import { readBytesLimited } from "../io/read.js";
import type { ModelConfig } from "../model/config.js";
import { Model } from "../model/model.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { llama2cConfig, readLlama2cHeader, readLlama2cTensors } from "./llama2c-checkpoint.js";
import { llama2cTokenizerJson, readLlama2cVocab } from "./llama2c-tokenizer.js";

/** What `importLlama2c` wrote. */
export interface Llama2cImport {
  config: ModelConfig;
  numParams: number;
  /** number of BPE merges in the written tokenizer.json */
  numMerges: number;
}

/**
 * Converts `modelPath` (legacy llama2.c checkpoint) and `tokenizerPath` (llama2.c tokenizer.bin) into the model
 * directory `outDir` (config.json, model.safetensors, tokenizer.json, tokenizer_config.json), written atomically.
 */
export function importLlama2c(modelPath: string, tokenizerPath: string, outDir: string): Llama2cImport {
  const bytes = readBytes(modelPath);
  const header = readLlama2cHeader(bytes, modelPath);
  const config = llama2cConfig(header);
  const model = new Model(config);
  const tensors = readLlama2cTensors(bytes, header);
  for (const p of model.table) {
    const t = tensors.get(p.name);
    if (!t || t.length !== p.size) throw new Error(`internal: ${p.name} has no tensor of ${p.size} values`);
    model.view(p.name).set(t);
  }
  const vocab = readLlama2cVocab(readBytes(tokenizerPath), header.vocabSize, tokenizerPath);
  const json = llama2cTokenizerJson(vocab, tokenizerPath);
  Tokenizer.fromJson(json, tokenizerPath); // refuse now what loadModel would refuse later
  const tokenizerConfig = {
    tokenizer_class: "LlamaTokenizerFast",
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: header.seqLen,
  };
  saveModelDir(outDir, model, {
    "tokenizer.json": `${JSON.stringify(json)}\n`,
    "tokenizer_config.json": `${JSON.stringify(tokenizerConfig, null, 2)}\n`,
  });
  return { config, numParams: model.numParams, numMerges: json.model.merges?.length ?? 0 };
}

/** llama2.c checkpoints of up to 4 GiB (a 1B-parameter model), read whole; devices and directories are refused */
const MAX_CHECKPOINT_BYTES = 4 * 1024 ** 3;

function readBytes(path: string): Uint8Array {
  return readBytesLimited(path, "", MAX_CHECKPOINT_BYTES);
}
